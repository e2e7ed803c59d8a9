"""Meaning that spans documents: the semantic checks of `reconciler validate`.

The schema says each file is well formed; these checks say the repository makes sense as a
whole: names are unique, every environment, login and role referred to exists, an action
fits what the change asks for, rollouts add up, and a quorum can be reached. What merging
onto a base would fail (edited change requests, unknown flags, stale versions) is
`plan.mergecheck`'s: it needs the base's history.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
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
from reconciler.repo.findings import Finding
from reconciler.repo.loader import PolicyRepository


def check_repository(repo: PolicyRepository) -> list[Finding]:
    """The semantic findings of a loaded repository (schema findings are in `repo.findings`)."""
    context = _Context(repo)
    # Duplicate environments are a schema finding (model/documents.py); the pass refuses them too.
    findings = list(_check_members(repo.members))
    findings += _duplicate_names("ApprovalPolicy", repo.policies)
    findings += _duplicate_names("ChangeRequest", repo.changes)
    for path, policy in repo.policies.items():
        findings += _check_policy(path, policy, context)
    for path, change in repo.changes.items():
        findings += _check_change(path, change.spec, context)
    return findings


class _Context:
    """What documents refer to: environment keys, logins and roles (None when unknown)."""

    def __init__(self, repo: PolicyRepository):
        project, members = repo.project, repo.members
        self.environments = {e.key for e in project.spec.environments} if project else None
        self.logins = {m.login.lower() for m in members.spec.members} if members else None
        self.roles = {r.name for r in members.spec.roles} if members else None
        self.members = members.spec.members if members else []


def _check_members(members: Members | None) -> Iterator[Finding]:
    if members is None:
        return
    roles = {r.name for r in members.spec.roles}
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
            yield _at(path, "/metadata/name", message, "duplicate-name")
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
    if context.logins is None:
        return
    config = policy.spec.approver_config
    eligible = {u.lower() for u in config.users} & context.logins
    eligible |= {m.login.lower() for m in context.members if set(m.roles) & set(config.roles)}
    reachable = len(eligible) if policy.spec.allow_self_approve else max(0, len(eligible) - 1)
    if config.quorum > reachable:
        why = (
            ""
            if policy.spec.allow_self_approve
            else " (a requester among them cannot approve their own change)"
        )
        message = (
            f"quorum {config.quorum} can never be met: {len(eligible)} member(s) may approve{why}, so at most"
            f" {reachable} approval(s) are possible; add approvers or lower the quorum"
        )
        yield _at(path, "/spec/approver_config/quorum", message, "unreachable-quorum")


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
    listed = ", ".join(sorted(known)[:10]) or "none"
    message = f"unknown {what} {value!r}: not declared in {source} (known: {listed})"
    return _at(path, pointer, message, f"unknown-{what.rsplit(maxsplit=1)[-1]}")


def _at(path: str, pointer: str, message: str, rule: str) -> Finding:
    return Finding(path, message, pointer, None, None, rule)
