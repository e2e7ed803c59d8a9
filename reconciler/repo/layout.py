"""The layout of a policy repository: which path holds which kind of document.

`reconciler.yaml` is the project, `members.yaml` the members, each YAML file directly in
`policies/` an approval policy and every YAML file below `changes/` a change request. The
project, the members and the policies are the rule files; a change to them is judged by the
policies of a meta action (`members.change` for the members, `approval_policy.change` for
the rest). An entry at a document's place that is not a regular file is a finding.
"""

from __future__ import annotations

import stat
from collections.abc import Iterable, Iterator

from reconciler.model.states import META_ACTIONS
from reconciler.repo.findings import Finding
from reconciler.repo.sources import FileSource, not_a_file, not_a_file_message

PROJECT_FILE = "reconciler.yaml"
MEMBERS_FILE = "members.yaml"
_YAML_SUFFIXES = (".yaml", ".yml")
RULE_KINDS = ("Project", "Members", "ApprovalPolicy")
# The meta actions whose policies judge rule-file changes, in the order a commit's changes are
# judged: the members first, so that policies naming new members check against them.
POLICY_CHANGE, MEMBERS_CHANGE = META_ACTIONS


def kind_of_path(path: str) -> str | None:
    """The document kind a file holds by where it is, or None when it is not a document."""
    if path == PROJECT_FILE:
        return "Project"
    if path == MEMBERS_FILE:
        return "Members"
    if not path.endswith(_YAML_SUFFIXES):
        return None
    if path.startswith("policies/") and path.count("/") == 1:
        return "ApprovalPolicy"
    if path.startswith("changes/"):
        return "ChangeRequest"
    return None


def is_rule_file(path: str) -> bool:
    """Whether `path` holds one of the rules: the project, the members or a policy."""
    return kind_of_path(path) in RULE_KINDS


def meta_action(path: str) -> str:
    """The meta action whose policies judge a change to the rule file at `path`."""
    return MEMBERS_CHANGE if path == MEMBERS_FILE else POLICY_CHANGE


def by_meta_action(paths: Iterable[str]) -> dict[str, list[str]]:
    """Changed rule files grouped by the meta action that judges them, members first; no empty group."""
    groups: dict[str, list[str]] = {MEMBERS_CHANGE: [], POLICY_CHANGE: []}
    for path in paths:
        groups[meta_action(path)].append(path)
    return {action: files for action, files in groups.items() if files}


def in_layout(path: str) -> bool:
    """Whether the layout gives `path` a meaning: a rule file, or anything under policies/ or changes/."""
    layout = (PROJECT_FILE, MEMBERS_FILE, "policies", "changes")
    return path in layout or path.startswith(("policies/", "changes/"))


def misplaced(paths: Iterable[str]) -> Iterator[Finding]:
    """YAML files under policies/ that are not read: only files directly in it are policies."""
    for path in paths:
        if path.startswith("policies/") and path.count("/") > 1 and path.endswith(_YAML_SUFFIXES):
            message = (
                "policies are read only from files directly in policies/: this file is ignored, move it up"
            )
            yield Finding(path, message, rule="ignored-file")


def not_a_file_finding(path: str, mode: int) -> Finding:
    """The finding for a non-regular entry where the layout expects a document."""
    return Finding(path, not_a_file_message(str(not_a_file(mode))), rule="not-a-file")


def not_regular_findings(source: FileSource) -> list[Finding]:
    """A finding for each entry at a document's place that is not a regular file.

    A plain directory is only reported when it is named like a document (`changes/x.yaml/`);
    links, gitlinks, pipes and devices anywhere under policies/ or changes/ or at a rule-file path.
    """
    findings = []
    for path, mode in sorted(source.other_entries().items()):
        if (kind_of_path(path) is None) if stat.S_ISDIR(mode) else not in_layout(path):
            continue
        findings.append(not_a_file_finding(path, mode))
    return findings
