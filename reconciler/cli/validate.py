"""`reconciler validate [PATH]...`: schema and meaning of a policy repository, or of some of its files."""

from __future__ import annotations

import os
import sys

import click

from reconciler.errors import EXIT_FINDINGS, EXIT_OK
from reconciler.repo.findings import Finding
from reconciler.repo.parse import usable_cpus
from reconciler.repo.sources import DirectorySource, FileSource
from reconciler.validate.pipeline import validate_source
from reconciler.validate.report import REPORTERS, failed
from reconciler.validate.targets import resolve_targets


@click.command()
@click.argument("paths", nargs=-1, metavar="[PATH]...")  # checked by resolve_targets, NUL bytes too
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
@click.option("--strict", is_flag=True, help="Warnings fail the run too.")
def validate(paths: tuple[str, ...], fmt: str, base: str | None, jobs: int | None, strict: bool) -> None:
    """Check every document against its schema and the repository's meaning, in one pass.

    A PATH (default: .) is a repository's directory, or files and directories inside one,
    checked in the context of their repository (the nearest directory above holding
    reconciler.yaml). Exit 0 when clean or only warnings were found (1 under --strict),
    1 when errors were found, 2 on a usage or I/O error.
    """
    findings: list[Finding] = []
    for target in resolve_targets(paths):
        source = DirectorySource(target.root)
        found = validate_source(source, base=_base_source(target.root, base), jobs=jobs or usable_cpus())
        findings += target.shown(found)
    REPORTERS[fmt](findings, ".", lambda text: click.echo(text, nl=False), os.environ)
    sys.exit(EXIT_FINDINGS if failed(findings, strict) else EXIT_OK)


def _base_source(path: str, base: str | None) -> FileSource | None:
    if base is None:
        return None
    from reconciler.gitrepo.repository import GitRepository  # GitPython is slow to import: only for --base

    repository, subdir = GitRepository.containing(path)
    return repository.source_at(base, subdir=subdir)
