"""Members and roles by login, uuid and id, for rendering user objects.

Change requests and policies name people by login; the API shows PostHog's user object.
Building the lookup once per store version (not per request) keeps lists of 100 change
requests from re-reading the members table 100 times.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from reconciler.store import MemberRecord, Reader, RoleRecord


def iso(at: datetime | None) -> str | None:
    """A UTC time as PostHog writes it: `2026-03-01T12:00:00Z`."""
    return None if at is None else at.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Directory:
    """Every member (current and removed) and role, as of one store version."""

    version: int
    members: tuple[MemberRecord, ...]
    roles: tuple[RoleRecord, ...]
    _by_key: dict[str, MemberRecord] = field(default_factory=dict, repr=False)
    _by_id: dict[int, MemberRecord] = field(default_factory=dict, repr=False)

    @classmethod
    def build(cls, version: int, members: list[MemberRecord], roles: list[RoleRecord]) -> Directory:
        directory = cls(version, tuple(members), tuple(roles))
        # Current members win over removed ones that shared a login.
        for member in sorted(members, key=lambda m: m.removed_at is None):
            directory._by_key[member.login.lower()] = member
            directory._by_key[member.uuid] = member
            directory._by_id[member.id] = member
        return directory

    def member(self, ident: str | int | None) -> MemberRecord | None:
        """A member by login (any case), uuid or integer id."""
        if ident is None:
            return None
        if isinstance(ident, int):
            return self._by_id.get(ident)
        return self._by_key.get(ident) or self._by_key.get(ident.lower())

    def user(self, ident: str | int | None) -> dict[str, Any] | None:
        """PostHog's user object for a member, or None for someone not in members.yaml."""
        member = self.member(ident)
        return None if member is None else user_object(member)

    def role_id(self, name: str) -> str:
        """A role's uuid (PostHog names roles by id), or the name itself when undeclared."""
        return next((r.id for r in self.roles if r.name == name), name)

    @property
    def current(self) -> list[MemberRecord]:
        return [m for m in self.members if m.removed_at is None]


# PostHog's `role_at_organization` choices.
ROLES_AT_ORGANIZATION = (
    "engineering",
    "data",
    "product",
    "founder",
    "leadership",
    "marketing",
    "sales",
    "other",
)


def role_at_organization(text: str | None) -> str | None:
    """members.yaml's free text as one of PostHog's choices: a choice named in any case is
    that choice, any other text is `other`; none stays null."""
    if text is None or not text.strip():
        return None
    choice = text.strip().lower()
    return choice if choice in ROLES_AT_ORGANIZATION else "other"


def user_object(member: MemberRecord) -> dict[str, Any]:
    """PostHog's user object, plus the GitHub `login` it stands for and the job function as
    members.yaml writes it (`role_at_organization_text`)."""
    return {
        "id": member.id,
        "uuid": member.uuid,
        "distinct_id": member.login,
        "first_name": member.first_name,
        "last_name": member.last_name,
        "email": member.email,
        # members.yaml is reviewed like code, but nobody verified the address by mail.
        "is_email_verified": False,
        "hedgehog_config": {},
        "role_at_organization": role_at_organization(member.role_at_organization),
        "login": member.login,
        "role_at_organization_text": member.role_at_organization,
    }


def directory_of(reader: Reader) -> Directory:
    """The directory as `reader` sees the store (for callers outside a request, such as the CLI)."""
    return Directory.build(
        reader.store_version(), reader.list_members(include_removed=True), reader.list_roles()
    )


class DirectoryCache:
    """The directory of the current store version, rebuilt only when the store changed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._current: Directory | None = None

    def get(self, reader: Callable[[], Reader], version: int) -> Directory:
        """The directory as of `version`; `reader()` is asked only when it must be read."""
        current = self._current
        if current is not None and current.version == version:
            return current
        snapshot = reader()
        directory = Directory.build(
            version, snapshot.list_members(include_removed=True), snapshot.list_roles()
        )
        with self._lock:
            if self._current is None or self._current.version <= version:
                self._current = directory
        return directory
