"""The example people and the clock origin that every test and benchmark shares.

Each person is defined once: the same login, name, e-mail, organisation level and roles
wherever they appear (a git author, an entry in `members.yaml`, a stored member, a vote).
`TEAM` is the members list of the example policy repository and of the approval-evaluation
tests; the seeded API store lists `ADA`, `GRACE` and `LINUS`. `MALLORY` is nobody's member.

Times are minutes after `T0`; git commits count seconds from `EPOCH`, the same instant.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
EPOCH = int(T0.timestamp())

ROLES = ("flag-approvers", "release-managers", "sre", "oncall")


@dataclass(frozen=True)
class Person:
    login: str
    name: str
    email: str
    level: int = 1
    roles: tuple[str, ...] = ()
    role_at_organization: str | None = None

    @property
    def identity(self) -> tuple[str, str]:
        """(name, e-mail), as git records an author or a committer."""
        return self.name, self.email

    def member(self) -> dict[str, Any]:
        """The person's entry in a Members document."""
        first, last = self.name.split(" ", 1)
        entry: dict[str, Any] = {
            "login": self.login,
            "email": self.email,
            "first_name": first,
            "last_name": last,
            "level": self.level,
            "roles": list(self.roles),
        }
        if self.role_at_organization is not None:
            entry["role_at_organization"] = self.role_at_organization
        return entry


ALICE = Person("alice", "Alice Requester", "alice@example.com", roles=("flag-approvers", "release-managers"))
BOB = Person("bob", "Bob Reviewer", "bob@example.com", roles=("flag-approvers", "release-managers"))
CAROL = Person("carol", "Carol Reviewer", "carol@example.com", roles=("flag-approvers",))
DAVE = Person("dave", "Dave Admin", "dave@example.com", level=8, roles=("release-managers",))
ERIN = Person("erin", "Erin Owner", "erin@example.com", level=15, roles=("sre",))
FRANK = Person("frank", "Frank Oncall", "frank@example.com", level=8, roles=("oncall",))
ADA = Person(
    "ada",
    "Ada Lovelace",
    "ada@example.com",
    level=8,
    roles=("release-managers",),
    role_at_organization="engineering",
)
GRACE = Person("grace", "Grace Hopper", "grace@example.com", level=15, role_at_organization="leadership")
LINUS = Person("linus", "Linus T", "linus@example.com")
MALLORY = Person("mallory", "Mallory Outsider", "mallory@example.com")

TEAM = (ALICE, BOB, CAROL, DAVE, ERIN, FRANK)


def members_spec(people: Iterable[Person] = TEAM, roles: Iterable[str] = ROLES) -> dict[str, Any]:
    """The `spec` of a Members document listing `people`."""
    return {"roles": [{"name": role} for role in roles], "members": [person.member() for person in people]}


def members_document(people: Iterable[Person] = TEAM, name: str = "acme-members") -> dict[str, Any]:
    """A whole Members document, as `members.yaml` holds it."""
    return {
        "apiVersion": "reconciler/v1",
        "kind": "Members",
        "metadata": {"name": name},
        "spec": members_spec(people),
    }
