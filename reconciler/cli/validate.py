"""`reconciler validate [PATH]`: schema and meaning of every file of a policy repository."""

from __future__ import annotations

import os
import sys

import click

from reconciler.errors import EXIT_FINDINGS, EXIT_OK
from reconciler.repo.parse import usable_cpus
from reconciler.repo.sources import DirectorySource, FileSource
from reconciler.validate.pipeline import validate_source
from reconciler.validate.report import REPORTERS, failed


@click.command()
@click.argument("path", default=".", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(list(REPORTERS)),
    default="text",
    show_default=True,
    help="Output format.",
)
@click.option(
    "--base",
    metavar="REF",
    help="Base branch or commit: change requests that exist there must not be edited.",
)
@click.option(
    "--jobs", "-j", type=click.IntRange(min=1), help="Processes used to parse (default: one per usable CPU)."
)
def validate(path: str, fmt: str, base: str | None, jobs: int | None) -> None:
    """Check every document in PATH against its schema and the repository's meaning.

    Exit 0 when clean or when only warnings were found, 1 when problems were found, 2 on a
    usage or I/O error.
    """
    source = DirectorySource(path)
    findings = validate_source(source, base=_base_source(path, base), jobs=jobs or usable_cpus())
    REPORTERS[fmt](findings, path, lambda text: click.echo(text, nl=False), os.environ)
    sys.exit(EXIT_FINDINGS if failed(findings) else EXIT_OK)


def _base_source(path: str, base: str | None) -> FileSource | None:
    if base is None:
        return None
    from reconciler.gitrepo.repository import GitRepository  # GitPython is slow to import: only for --base

    repository, subdir = GitRepository.containing(path)
    return repository.source_at(base, subdir=subdir)
