"""Which path parameters can name a stored object: checked before the store is asked."""

from __future__ import annotations

import re

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def is_uuid(text: str) -> bool:
    """Ids are lower-case uuids; anything else names nothing (and never reaches the database)."""
    return _UUID.fullmatch(text) is not None
