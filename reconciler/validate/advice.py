"""Warnings: valid settings that do not do what their name suggests here.

`validate` reports them and still passes; the reconcile pass never reads them.

- `ensure_experience_continuity`: PostHog keeps a person's variant across the switch from an
  anonymous to an identified distinct id by storing a hash-key override per person. This
  server keeps no persons, so it evaluates such a flag on the distinct id alone, as if the
  setting were off; and the SDKs' local evaluation never decides such a flag, so every SDK
  asks the server for it on every call.
- a group type index no entry of `group_types` in `reconciler.yaml` names: the flag applies,
  but no caller can be matched to a group of that type, so it answers `false` for everyone,
  locally and remotely. A warning, not an error: the change is valid and applies (the flag
  fails closed), and an applied change request never changes, so renaming or dropping a group
  type later must not make files that can no longer be edited fail every validation.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from reconciler.model.documents import AddGroup, ChangeRequestSpec, ReplaceFilters, UpdateGroupProperties
from reconciler.model.flags import FlagFilters, PropertyFilter
from reconciler.repo.findings import WARNING, Finding
from reconciler.repo.loader import PolicyRepository

CONTINUITY = (
    "ensure_experience_continuity is evaluated on the distinct id alone here (this server keeps no"
    " persons, so a user's variant can change when an anonymous id is identified), and the SDKs'"
    " local evaluation never decides such a flag, so every SDK asks the server for it on every call;"
    " set it to false unless that is what you want"
)


def advice(repo: PolicyRepository) -> Iterator[Finding]:
    named = {g.index: g.name for g in repo.project.spec.group_types} if repo.project else None
    for path, change in repo.changes.items():
        if named is not None:
            yield from _unnamed_group_types(path, change.spec, named)
        flag = change.spec.flag
        if flag is not None and flag.ensure_experience_continuity:
            yield Finding(
                path,
                CONTINUITY,
                "/spec/flag/ensure_experience_continuity",
                rule="experience-continuity",
                severity=WARNING,
            )


def _unnamed_group_types(path: str, spec: ChangeRequestSpec, named: dict[int, str]) -> Iterator[Finding]:
    for pointer, index in _group_type_indices(spec):
        if index not in named:
            listed = ", ".join(f"{i} {name}" for i, name in sorted(named.items())) or "none"
            yield Finding(
                path,
                f"group type {index} is not named in reconciler.yaml's group_types (named: {listed}), so"
                " no caller can belong to such a group and the flag answers false for everyone; add"
                f" `{{index: {index}, name: <group type>}}` to group_types or use a named index",
                pointer,
                rule="unnamed-group-type",
                severity=WARNING,
            )


def _group_type_indices(spec: ChangeRequestSpec) -> Iterator[tuple[str, int]]:
    """(JSON pointer, index) of every group type index the change request writes."""
    if spec.flag is not None:
        yield from _filters_indices("/spec/flag/filters", spec.flag.filters)
    for i, instruction in enumerate(spec.instructions):
        where = f"/spec/instructions/{i}"
        if isinstance(instruction, ReplaceFilters):
            yield from _filters_indices(f"{where}/filters", instruction.filters)
        elif isinstance(instruction, AddGroup | UpdateGroupProperties):
            yield from _property_indices(f"{where}/properties", instruction.properties)


def _filters_indices(where: str, filters: FlagFilters) -> Iterator[tuple[str, int]]:
    if filters.aggregation_group_type_index is not None:
        yield f"{where}/aggregation_group_type_index", filters.aggregation_group_type_index
    for i, group in enumerate(filters.groups):
        yield from _property_indices(f"{where}/groups/{i}/properties", group.properties)


def _property_indices(where: str, properties: Iterable[PropertyFilter]) -> Iterator[tuple[str, int]]:
    for i, prop in enumerate(properties):
        if prop.type == "group" and prop.group_type_index is not None:
            yield f"{where}/{i}/group_type_index", prop.group_type_index
