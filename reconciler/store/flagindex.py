"""Which flags exist, with their id and version, remembered between write transactions.

A pass checks every change's flag against its stored version. Asking the database once per
change costs a round trip each on PostgreSQL; instead a `Store` keeps, per environment, every
flag's (id, version) together with the environment's flags counter at the time. The counter
moves with every flag change by anyone, so an entry whose counter equals the one in the
database is exactly the database's state, and any other entry is ignored and reloaded.
One per `Store`, shared by its write transactions.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

FlagStates = dict[str, tuple[int, int]]  # flag key -> (id, version)


class FlagIndex:
    """Per environment: (flags counter, every flag's (id, version)) as of that counter."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._environments: dict[int, tuple[int, FlagStates]] = {}

    def lookup(self, environment_id: int, counter: int) -> FlagStates | None:
        """A copy of the environment's flag states if they are current for `counter`."""
        with self._lock:
            entry = self._environments.get(environment_id)
        if entry is None or entry[0] != counter:
            return None
        return dict(entry[1])

    def publish(self, updates: Mapping[int, tuple[int, FlagStates]]) -> None:
        """Remember states a committed transaction left, each with its counter value."""
        with self._lock:
            self._environments.update(updates)
