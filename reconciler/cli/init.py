"""`reconciler init [DIR]`: write a new policy repository, keeping every file that exists."""

from __future__ import annotations

import click

from reconciler.scaffold import init_repository


@click.command()
@click.argument("directory", default=".", metavar="[DIR]", type=click.Path(file_okay=True, dir_okay=True))
@click.option(
    "--login",
    metavar="LOGIN",
    help="Your GitHub login, for the owner in members.yaml (git cannot tell it; default: a placeholder).",
)
def init(directory: str, login: str | None) -> None:
    """Write a policy repository into DIR (default: here) that validates clean.

    Writes reconciler.yaml, members.yaml, a starter policy set, an example change request,
    .gitignore, the GitHub workflow, a pre-commit hook and editor schema associations. An
    existing file is never overwritten: it is kept and listed. Exit 2 when DIR is not a
    directory or a path to write is a symlink or not a regular file.
    """
    result = init_repository(directory, login=login)
    for path in result.written:
        click.echo(f"wrote: {path}")
    for path in result.kept:
        click.echo(f"kept: {path}")
    for note in result.notes:
        click.echo(f"note: {note}")
    click.echo(f"next: edit the CHANGE ME values, then `reconciler validate {directory}`")
