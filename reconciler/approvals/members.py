"""People as members: a login or an email, matched case-insensitively, to a member's login.

A name that matches nobody stays as written, so the evaluation reports it as an unknown login.
"""

from __future__ import annotations

from reconciler.model.documents import Members


class MemberIndex:
    """Find members by login or email, case-insensitively."""

    def __init__(self, members: Members):
        self._by_key: dict[str, str] = {}
        for member in members.spec.members:
            self._by_key[member.login.lower()] = member.login
            self._by_key[member.email.lower()] = member.login

    def login_for(self, *names: str | None) -> str | None:
        """The login of the first of `names` (logins or emails) that is a member, else None."""
        for name in names:
            if name and (login := self._by_key.get(name.strip().lower())):
                return login
        return None

    def person(self, name: str | None, email: str | None) -> str | None:
        """A git identity as a member login, or the raw name when nobody matches."""
        return self.login_for(email, name) or (name or email)
