"""The validator as one pipeline: load the repository, check it, locate the findings.

`validate_source` gives every schema and semantic finding, sorted by place, in one run: the
semantic checks also read what of a file with schema errors still reads. A reporter from
`report.REPORTERS` prints them.
"""

from __future__ import annotations

from reconciler.repo.findings import Finding, locate_findings
from reconciler.repo.loader import load_repository
from reconciler.repo.sources import FileSource
from reconciler.validate.advice import advice
from reconciler.validate.checks import check_repository


def validate_source(source: FileSource, jobs: int = 1) -> list[Finding]:
    """Every schema and semantic finding of the repository in `source`, located and sorted.

    What merging the repository onto a base would fail is `plan.mergecheck` (`validate --base`).
    """
    repo = load_repository(source, jobs=jobs, salvage_invalid=True)
    findings = [*repo.findings, *check_repository(repo), *advice(repo)]
    return locate_findings(findings, source)
