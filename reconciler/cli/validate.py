"""`reconciler validate [PATH] [--base REF]`: schema and meaning of every file of a policy repository.

With `--base`, also what merging PATH onto REF would fail (`plan.mergecheck.validate_branch`).
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime

import click

from reconciler.errors import EXIT_FINDINGS, EXIT_OK
from reconciler.repo.parse import usable_cpus
from reconciler.repo.sources import DirectorySource
from reconciler.validate.pipeline import validate_source
from reconciler.validate.report import REPORTERS


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
    help="Base branch or commit (with its history): also judge every change request the branch adds "
    "against the flags that history produces, and refuse edits, renames and removals of change "
    "requests that exist there.",
)
@click.option(
    "--jobs", "-j", type=click.IntRange(min=1), help="Processes used to parse (default: one per usable CPU)."
)
def validate(path: str, fmt: str, base: str | None, jobs: int | None) -> None:
    """Check every document in PATH against its schema and the repository's meaning.

    With --base REF, also everything merging PATH onto REF would fail apart from missing
    approvals: the history up to REF is replayed by the reconcile pass itself (no store, no
    GitHub: merged changes count as approved) and each change request new since REF is judged
    against the flags it leaves. Exit 0 when clean, 1 when problems were found, 2 on a usage
    or I/O error.
    """
    jobs = jobs or usable_cpus()
    if base is None:
        findings = validate_source(DirectorySource(path), jobs=jobs)
    else:
        from reconciler.plan.mergecheck import validate_branch  # git and the store: only for --base

        findings = validate_branch(path, base, now=datetime.now(UTC), jobs=jobs)
    REPORTERS[fmt](findings, path, lambda text: click.echo(text, nl=False), os.environ)
    sys.exit(EXIT_FINDINGS if findings else EXIT_OK)
