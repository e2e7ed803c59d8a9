"""Findings reported for people and machines: text, JSON, GitHub annotations, step summary.

`REPORTERS` names every output format; each reporter prints the findings and may write
something beside them. GitHub shows only ten annotations per step, so the `github` reporter
also appends the full list as Markdown to the file named by `$GITHUB_STEP_SUMMARY` when the
variable is set. Every format carries each finding's severity (`error` or `warning`);
`failed` says whether they fail the run (warnings only under `--strict`).
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from reconciler.model.text import table_cell
from reconciler.repo.findings import ERROR, WARNING, Finding


class Reporter(Protocol):
    """One output format: prints the findings through `out`, and may write what `environ` names."""

    def __call__(
        self, findings: Sequence[Finding], root: str, out: Callable[[str], None], environ: Mapping[str, str]
    ) -> None: ...


def display_path(root: str, path: str) -> str:
    """A finding's path as the user sees it: relative to where they ran the command."""
    return (
        posixpath.normpath(posixpath.join(root.replace("\\", "/"), path)) if root not in ("", ".") else path
    )


def report_text(
    findings: Sequence[Finding], root: str, out: Callable[[str], None], environ: Mapping[str, str]
) -> None:
    out(render_text(findings, root))


def report_json(
    findings: Sequence[Finding], root: str, out: Callable[[str], None], environ: Mapping[str, str]
) -> None:
    out(render_json(findings, root))


def report_github(
    findings: Sequence[Finding], root: str, out: Callable[[str], None], environ: Mapping[str, str]
) -> None:
    """Annotations, and the full list in the step summary when `$GITHUB_STEP_SUMMARY` names a file."""
    out(render_github(findings, root))
    summary = environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        append_step_summary(summary, findings, root)


# Every output format by name; `reconciler validate --format` offers these.
REPORTERS: dict[str, Reporter] = {"text": report_text, "json": report_json, "github": report_github}


def failed(findings: Sequence[Finding], strict: bool = False) -> bool:
    """Whether the findings fail the run: any error, or under `strict` any warning too."""
    return any(f.severity == ERROR or strict for f in findings)


def render_text(findings: Sequence[Finding], root: str = ".") -> str:
    lines = [f"{_where(f, root)}: {f.severity}: {f.message} [{f.rule}]{_pointer(f)}" for f in findings]
    lines.append(summary_line(findings))
    return "\n".join(lines) + "\n"


def summary_line(findings: Sequence[Finding]) -> str:
    if not findings:
        return "valid: no problems found"
    warnings = sum(f.severity == WARNING for f in findings)
    problems = len(findings) - warnings
    if not problems:
        return f"valid: {warnings} warning(s) in {len({f.path for f in findings})} file(s)"
    affected = len({f.path for f in findings if f.severity == ERROR})
    also = f", {warnings} warning(s)" if warnings else ""
    return f"invalid: {problems} problem(s) in {affected} file(s){also}"


def render_json(findings: Sequence[Finding], root: str = ".") -> str:
    payload = {
        "valid": not failed(findings),
        "errors": sum(f.severity == ERROR for f in findings),
        "warnings": sum(f.severity == WARNING for f in findings),
        "findings": [
            {
                "file": display_path(root, f.path),
                "line": f.line,
                "column": f.column,
                "pointer": f.pointer,
                "severity": f.severity,
                "rule": f.rule,
                "message": f.message,
            }
            for f in findings
        ],
    }
    return json.dumps(payload, indent=2) + "\n"


def render_github(findings: Sequence[Finding], root: str = ".") -> str:
    """GitHub workflow commands: one `::error` or `::warning` annotation per finding."""
    lines = []
    for f in findings:
        props = [f"file={_escape_property(display_path(root, f.path))}"]
        if f.line is not None:
            props += [f"line={f.line}", f"col={f.column or 1}"]
        props.append(f"title={_escape_property(f'reconciler: {f.rule}')}")
        lines.append(f"::{f.severity} {','.join(props)}::{_escape_data(f.message + _pointer(f))}")
    lines.append(summary_line(findings))
    return "\n".join(lines) + "\n"


def step_summary(findings: Sequence[Finding], root: str = ".") -> str:
    """The full list as Markdown, for `$GITHUB_STEP_SUMMARY`."""
    if not findings:
        return "### reconciler validate\n\nNo problems found.\n"
    rows = [
        f"| `{table_cell(_where(f, root))}` | {f.severity} | {table_cell(f.rule)} | {table_cell(f.message)} "
        f"| `{table_cell(f.pointer or '/')}` |"
        for f in findings
    ]
    header = [
        "### reconciler validate",
        "",
        f"{summary_line(findings)}.",
        "",
        "| where | severity | rule | problem | pointer |",
        "|---|---|---|---|---|",
    ]
    return "\n".join(header + rows) + "\n"


def append_step_summary(path: str, findings: Sequence[Finding], root: str = ".") -> None:
    with Path(path).open("a", encoding="utf-8") as handle:
        handle.write(step_summary(findings, root))


def _where(f: Finding, root: str) -> str:
    shown = display_path(root, f.path)
    return shown if f.line is None else f"{shown}:{f.line}:{f.column or 1}"


def _pointer(f: Finding) -> str:
    return f" (at {f.pointer})" if f.pointer else ""


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")
