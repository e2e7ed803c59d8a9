"""Findings rendered for people and machines: text, JSON, GitHub annotations, step summary.

GitHub shows only ten
annotations per step, so the `github` format also appends the full list as Markdown to the
file named by `$GITHUB_STEP_SUMMARY` when the variable is set.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Sequence
from pathlib import Path

from reconciler.repo.loader import Finding

FORMATS = ("text", "json", "github")


def display_path(root: str, path: str) -> str:
    """A finding's path as the user sees it: relative to where they ran the command."""
    return (
        posixpath.normpath(posixpath.join(root.replace("\\", "/"), path)) if root not in ("", ".") else path
    )


def render(findings: Sequence[Finding], fmt: str, root: str = ".", files: int | None = None) -> str:
    """All findings in one format; `root` is the repository path as given on the command line."""
    if fmt == "json":
        return render_json(findings, root)
    if fmt == "github":
        return render_github(findings, root)
    return render_text(findings, root, files)


def render_text(findings: Sequence[Finding], root: str = ".", files: int | None = None) -> str:
    lines = [f"{_where(f, root)}: {f.message} [{f.rule}]{_pointer(f)}" for f in findings]
    lines.append(summary_line(findings, files))
    return "\n".join(lines) + "\n"


def summary_line(findings: Sequence[Finding], files: int | None = None) -> str:
    checked = f" in {files} file(s)" if files is not None else ""
    if not findings:
        return f"valid: no problems found{checked}"
    affected = len({f.path for f in findings})
    return f"invalid: {len(findings)} problem(s) in {affected} file(s){checked}"


def render_json(findings: Sequence[Finding], root: str = ".") -> str:
    payload = {
        "valid": not findings,
        "findings": [
            {
                "file": display_path(root, f.path),
                "line": f.line,
                "column": f.column,
                "pointer": f.pointer,
                "rule": f.rule,
                "message": f.message,
            }
            for f in findings
        ],
    }
    return json.dumps(payload, indent=2) + "\n"


def render_github(findings: Sequence[Finding], root: str = ".") -> str:
    """GitHub workflow commands: one `::error` annotation per finding."""
    lines = []
    for f in findings:
        props = [f"file={_escape_property(display_path(root, f.path))}"]
        if f.line is not None:
            props += [f"line={f.line}", f"col={f.column or 1}"]
        props.append(f"title={_escape_property(f'reconciler: {f.rule}')}")
        lines.append(f"::error {','.join(props)}::{_escape_data(f.message + _pointer(f))}")
    lines.append(summary_line(findings))
    return "\n".join(lines) + "\n"


def step_summary(findings: Sequence[Finding], root: str = ".") -> str:
    """The full list as Markdown, for `$GITHUB_STEP_SUMMARY`."""
    if not findings:
        return "### reconciler validate\n\nNo problems found.\n"
    rows = [
        f"| `{_cell(_where(f, root))}` | {_cell(f.rule)} | {_cell(f.message)} | `{_cell(f.pointer or '/')}` |"
        for f in findings
    ]
    header = [
        "### reconciler validate",
        "",
        f"{len(findings)} problem(s) found.",
        "",
        "| where | rule | problem | pointer |",
        "|---|---|---|---|",
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


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")
