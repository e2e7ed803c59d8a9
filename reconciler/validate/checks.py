"""Meaning that spans documents: the semantic checks of `reconciler validate`.

The schema says each file is well formed; these checks say the repository makes sense as a
whole: names are unique, every environment, login and role referred to exists, an action
fits what the change asks for, rollouts add up, and a quorum can be reached. Unknown
names come with the closest known one ("did you mean …"). What merging onto a base would
fail (edited change requests, unknown flags, stale versions) is `plan.mergecheck`'s: it needs
the base's history.

One finding is a warning, which fails a run only under `--strict`: a quorum that some
eligible members can never reach for their own changes (every other requester can).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import Any

from reconciler.model.documents import (
    ApprovalPolicy,
    ChangeRequest,
    ChangeRequestSpec,
    Members,
    ReplaceFilters,
    UpdateVariants,
    action_mismatch,
)
from reconciler.model.flags import FlagFilters
from reconciler.model.suggest import Names, did_you_mean
from reconciler.repo.findings import WARNING, Finding
from reconciler.repo.layout import MEMBERS_FILE, PROJECT_FILE
from reconciler.repo.loader import PolicyRepository


def check_repository(repo: PolicyRepository) -> list[Finding]:
    """The semantic findings of a loaded repository (schema findings are in `repo.findings`).

    Documents salvaged from schema errors (`repo.salvaged`) are checked for what of them reads,
    with their findings' pointers taken back to the document as written.
    """
    context = _Context(repo)
    # Duplicate environments are a schema finding (model/documents.py); the pass refuses them too.
    findings = list(_check_members(repo.members, context))
    findings += _duplicate_names("ApprovalPolicy", repo.policies)
    findings += _duplicate_names("ChangeRequest", repo.changes)
    for path, policy in repo.policies.items():
        findings += _check_policy(path, policy, context)
    for path, change in repo.changes.items():
        findings += _check_change(path, change.spec, context)
    return [_as_written(f, repo) for f in findings if _judged(f, repo)]


# What is judged of a salvaged document: references to other documents, which hold for the
# values that are there. Not what weighs the document as a whole (an action's required parts,
# rollouts adding up, a quorum against its approvers): a dropped part would make those false.
_SALVAGED_RULES = frozenset(
    {"unknown-environment", "unknown-login", "unknown-role", "duplicate-name", "copy-into-itself"}
)


def _judged(finding: Finding, repo: PolicyRepository) -> bool:
    return finding.path not in repo.salvaged or finding.rule in _SALVAGED_RULES


def _as_written(finding: Finding, repo: PolicyRepository) -> Finding:
    rest = repo.salvaged.get(finding.path)
    return finding if rest is None else replace(finding, pointer=rest.original_pointer(finding.pointer))


class _Context:
    """What documents refer to: environment keys, logins and roles (None when unknown).

    When reconciler.yaml or members.yaml is salvaged from schema errors, the names its failing
    entries still spell count as known (so no reference to them is reported twice), and no
    quorum is judged on a member list that lost entries.
    """

    def __init__(self, repo: PolicyRepository):
        project, members = repo.project, repo.members
        self.environments = _Known(e.key for e in project.spec.environments) if project else None
        self.logins = _Known(m.login.lower() for m in members.spec.members) if members else None
        self.roles = _Known(r.name for r in members.spec.roles) if members else None
        self.members = members.spec.members if members else []
        self.complete_members = MEMBERS_FILE not in repo.salvaged
        if PROJECT_FILE in repo.salvaged and self.environments is not None:
            self.environments |= _spelled(repo.salvaged[PROJECT_FILE].plain, "environments", "key")
        if MEMBERS_FILE in repo.salvaged and self.logins is not None and self.roles is not None:
            plain = repo.salvaged[MEMBERS_FILE].plain
            self.logins |= {login.lower() for login in _spelled(plain, "members", "login")}
            self.roles |= _spelled(plain, "roles", "name")


class _Known(set[str]):
    """Known names, with what an unknown-name finding says about them worked out once: a
    repository may declare thousands of names and misspell many (filled before first use)."""

    _names: Names | None = None
    _listing: str | None = None

    def names(self) -> Names:
        if self._names is None:
            self._names = Names(self)
        return self._names

    def listing(self) -> str:
        if self._listing is None:
            self._listing = _listed(sorted(self)) or "none"
        return self._listing


def _spelled(plain: Any, entries: str, name: str) -> set[str]:
    """The text at `/spec/{entries}/*/{name}` of a document as written, whatever else is wrong."""
    spec = plain.get("spec") if isinstance(plain, dict) else None
    listed = spec.get(entries) if isinstance(spec, dict) else None
    if not isinstance(listed, list):
        return set()
    return {e[name] for e in listed if isinstance(e, dict) and isinstance(e.get(name), str)}


def _check_members(members: Members | None, context: _Context) -> Iterator[Finding]:
    if members is None or context.roles is None:
        return
    roles = context.roles
    seen_roles: set[str] = set()
    for i, role in enumerate(members.spec.roles):
        if role.name in seen_roles:
            yield _at(
                "members.yaml",
                f"/spec/roles/{i}/name",
                f"role {role.name!r} is defined twice",
                "duplicate-name",
            )
        seen_roles.add(role.name)
    logins: set[str] = set()
    for i, member in enumerate(members.spec.members):
        if member.login.lower() in logins:
            yield _at(
                "members.yaml",
                f"/spec/members/{i}/login",
                f"member {member.login!r} is listed twice",
                "duplicate-name",
            )
        logins.add(member.login.lower())
        for j, role_name in enumerate(member.roles):
            if role_name not in roles:
                yield _unknown("members.yaml", f"/spec/members/{i}/roles/{j}", "role", role_name, roles)


def _duplicate_names(
    kind: str, documents: dict[str, ApprovalPolicy] | dict[str, ChangeRequest]
) -> Iterator[Finding]:
    first: dict[str, str] = {}
    for path, document in documents.items():
        name = document.metadata.name
        if name in first:
            message = f"another {kind} ({first[name]}) is already named {name!r}: names are unique per kind"
            yield Finding(path, message, "/metadata/name", rule="duplicate-name", related=(first[name],))
        else:
            first[name] = path


def _check_policy(path: str, policy: ApprovalPolicy, context: _Context) -> Iterator[Finding]:
    spec = policy.spec
    yield from _known(
        path, "/spec/match/environments", "environment", spec.match.environments or [], context.environments
    )
    yield from _known(
        path,
        "/spec/approver_config/users",
        "member login",
        spec.approver_config.users,
        context.logins,
        fold=True,
    )
    yield from _known(path, "/spec/approver_config/roles", "role", spec.approver_config.roles, context.roles)
    yield from _known(path, "/spec/bypass_roles", "role", spec.bypass_roles, context.roles)
    yield from _check_quorum(path, policy, context)


def _check_quorum(path: str, policy: ApprovalPolicy, context: _Context) -> Iterator[Finding]:
    """An error when no requester at all can reach the quorum; a warning naming the eligible
    members who never can for their own changes (self-approval off), when everyone else can."""
    if context.logins is None or not context.complete_members:
        return
    config = policy.spec.approver_config
    eligible = {u.lower() for u in config.users} & context.logins
    eligible |= {m.login.lower() for m in context.members if set(m.roles) & set(config.roles)}
    where = "/spec/approver_config/quorum"
    if config.quorum > len(eligible):
        message = (
            f"quorum {config.quorum} can never be met: only {len(eligible)} member(s) may approve,"
            " so no change under this policy can ever be approved; add approvers or lower the quorum"
        )
        yield _at(path, where, message, "unreachable-quorum")
    elif not policy.spec.allow_self_approve and config.quorum > len(eligible) - 1:
        names = _listed(sorted(eligible))
        message = (
            f"quorum {config.quorum} cannot be met for a change requested by {names}: a requester"
            f" cannot approve their own change, which leaves {len(eligible) - 1} approver(s); anyone"
            " else's change can be approved. Add an approver or lower the quorum if they must"
            " request changes under this policy"
        )
        yield Finding(path, message, where, rule="unreachable-quorum", severity=WARNING)


def _listed(names: list[str], limit: int = 10) -> str:
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown} and {len(names) - limit} more"


def _check_change(path: str, spec: ChangeRequestSpec, context: _Context) -> Iterator[Finding]:
    mismatch = action_mismatch(spec)
    if mismatch:
        yield _at(path, "/spec/action_key", mismatch, "action-mismatch")
    yield from _known(
        path, "/spec/environment", "environment", [spec.environment], context.environments, single=True
    )
    if spec.source_environment is not None:
        yield from _known(
            path,
            "/spec/source_environment",
            "environment",
            [spec.source_environment],
            context.environments,
            single=True,
        )
        if spec.source_environment == spec.environment:
            yield _at(
                path,
                "/spec/source_environment",
                "a flag cannot be copied into the environment it comes from",
                "copy-into-itself",
            )
    if spec.flag is not None:
        if spec.flag.key is not None and spec.flag.key != spec.resource_id:
            yield _at(
                path,
                "/spec/flag/key",
                f"flag key {spec.flag.key!r} differs from resource_id {spec.resource_id!r}",
                "bad-argument",
            )
        yield from _check_filters(path, "/spec/flag/filters", spec.flag.filters)
    for i, instruction in enumerate(spec.instructions):
        where = f"/spec/instructions/{i}"
        if isinstance(instruction, UpdateVariants):
            yield from _check_variants(path, f"{where}/variants", instruction.variants)
        elif isinstance(instruction, ReplaceFilters):
            yield from _check_filters(path, f"{where}/filters", instruction.filters)


def _check_filters(path: str, where: str, filters: FlagFilters) -> Iterator[Finding]:
    if filters.multivariate is None:
        return
    variants = filters.multivariate.variants
    yield from _check_variants(path, f"{where}/multivariate/variants", variants)
    keys = {v.key for v in variants}
    for i, group in enumerate(filters.groups):
        if group.variant is not None and group.variant not in keys:
            yield _unknown(path, f"{where}/groups/{i}/variant", "variant", group.variant, keys)


def _check_variants(path: str, where: str, variants: Iterable[Any]) -> Iterator[Finding]:
    variants = list(variants)
    total = sum(v.rollout_percentage for v in variants)
    if not math.isclose(total, 100, abs_tol=1e-9):
        listed = ", ".join(f"{v.key} {v.rollout_percentage:g}" for v in variants)
        yield _at(
            path,
            where,
            f"variant rollouts must sum to 100, these sum to {total:g} ({listed})",
            "bad-argument",
        )
    seen: set[str] = set()
    for i, variant in enumerate(variants):
        if variant.key in seen:
            yield _at(path, f"{where}/{i}/key", f"variant {variant.key!r} is listed twice", "bad-argument")
        seen.add(variant.key)


def _known(
    path: str,
    where: str,
    what: str,
    values: Iterable[str],
    known: set[str] | None,
    *,
    fold: bool = False,
    single: bool = False,
) -> Iterator[Finding]:
    if known is None:
        return  # the file declaring them is missing or broken; that already has a finding
    for i, value in enumerate(values):
        if (value.lower() if fold else value) not in known:
            yield _unknown(path, where if single else f"{where}/{i}", what, value, known)


def _unknown(path: str, pointer: str, what: str, value: str, known: set[str]) -> Finding:
    source = {"environment": "reconciler.yaml", "variant": "the flag's variants"}.get(what, "members.yaml")
    listed = _listed(sorted(known)) or "none"
    shown = value if len(value) <= 60 else value[:57] + "..."
    message = (
        f"unknown {what} {shown!r}{did_you_mean(value, known)} (not declared in {source}; known: {listed})"
    )
    return _at(path, pointer, message, f"unknown-{what.rsplit(maxsplit=1)[-1]}")


def _at(path: str, pointer: str, message: str, rule: str) -> Finding:
    return Finding(path, message, pointer, None, None, rule)
