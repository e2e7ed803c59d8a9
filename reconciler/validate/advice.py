"""Warnings: valid settings that do not do what their name suggests here.

`validate` reports them and still passes; the reconcile pass never reads them.

- `ensure_experience_continuity`: PostHog keeps a person's variant across the switch from an
  anonymous to an identified distinct id by storing a hash-key override per person. This
  server keeps no persons, so it evaluates such a flag on the distinct id alone, as if the
  setting were off; and the SDKs' local evaluation never decides such a flag, so every SDK
  asks the server for it on every call.
"""

from __future__ import annotations

from collections.abc import Iterator

from reconciler.repo.findings import WARNING, Finding
from reconciler.repo.loader import PolicyRepository

CONTINUITY = (
    "ensure_experience_continuity is evaluated on the distinct id alone here (this server keeps no"
    " persons, so a user's variant can change when an anonymous id is identified), and the SDKs'"
    " local evaluation never decides such a flag, so every SDK asks the server for it on every call;"
    " set it to false unless that is what you want"
)


def advice(repo: PolicyRepository) -> Iterator[Finding]:
    for path, change in repo.changes.items():
        flag = change.spec.flag
        if flag is not None and flag.ensure_experience_continuity:
            yield Finding(
                path,
                CONTINUITY,
                "/spec/flag/ensure_experience_continuity",
                rule="experience-continuity",
                severity=WARNING,
            )
