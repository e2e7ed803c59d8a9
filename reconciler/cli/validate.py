"""`reconciler validate [PATH]... [--base REF]`: schema and meaning of a policy repository, or of
some of its files.

With `--base`, also what merging the repository onto REF would fail
(`plan.mergecheck.validate_branch`).
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime

import click

from reconciler.errors import EXIT_FINDINGS, EXIT_OK
from reconciler.repo.findings import Finding
from reconciler.repo.parse import usable_cpus
from reconciler.repo.sources import DirectorySource
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
    help="Base branch or commit (with its history): also judge every change request the branch adds "
    "against the flags that history produces, and refuse edits, renames and removals of change "
    "requests that exist there.",
)
@click.option(
    "--jobs", "-j", type=click.IntRange(min=1), help="Processes used to parse (default: one per usable CPU)."
)
@click.option("--strict", is_flag=True, help="Warnings fail the run too.")
def validate(paths: tuple[str, ...], fmt: str, base: str | None, jobs: int | None, strict: bool) -> None:
    """Check every document against its schema and the repository's meaning, in one pass.

    A PATH (default: .) is a repository's directory, or files and directories inside one,
    checked in the context of their repository (the nearest directory above holding
    reconciler.yaml). With --base REF, also everything merging the repository onto REF would
    fail apart from missing approvals: the history up to REF is replayed by the reconcile pass
    itself (no store, no GitHub: merged changes count as approved) and each change request new
    since REF is judged against the flags it leaves. Exit 0 when clean or only warnings were
    found (1 under --strict), 1 when errors were found, 2 on a usage or I/O error.
    """
    jobs = jobs or usable_cpus()
    findings: list[Finding] = []
    for target in resolve_targets(paths):
        if base is None:
            found = validate_source(DirectorySource(target.root), jobs=jobs)
        else:
            from reconciler.plan.mergecheck import validate_branch  # git and the store: only for --base

            found = validate_branch(target.root, base, now=datetime.now(UTC), jobs=jobs)
        findings += target.shown(found)
    REPORTERS[fmt](findings, ".", lambda text: click.echo(text, nl=False), os.environ)
    sys.exit(EXIT_FINDINGS if failed(findings, strict) else EXIT_OK)
