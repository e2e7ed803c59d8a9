"""`python -m reconciler` is the `reconciler` command."""

from reconciler.cli import main

# Guarded: worker processes started by a fork server or spawn import the main module again.
if __name__ == "__main__":
    main()
