"""The validator as one pipeline: load the repository, check it, locate the findings.

`validate_source` gives every schema and semantic finding, sorted by place; a reporter from
`report.REPORTERS` prints them.
"""

from __future__ import annotations

from reconciler.repo.findings import Finding, locate_findings
from reconciler.repo.loader import load_repository
from reconciler.repo.sources import FileSource
from reconciler.validate.checks import check_repository


def validate_source(source: FileSource, jobs: int = 1) -> list[Finding]:
    """Every schema and semantic finding of the repository in `source`, located and sorted.

    What merging the repository onto a base would fail is `plan.mergecheck` (`validate --base`).
    """
    repo = load_repository(source, jobs=jobs)
    findings = [*repo.findings, *check_repository(repo)]
    return locate_findings(findings, source)
