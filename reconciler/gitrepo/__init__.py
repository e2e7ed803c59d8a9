"""The only git code: the repository, the first-parent walk, blobs and log parsing."""
