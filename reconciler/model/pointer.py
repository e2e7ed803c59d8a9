"""JSON pointers (RFC 6901): how findings name a place inside a document."""

from __future__ import annotations


def pointer_of(parts: tuple[str | int, ...] | list[str | int]) -> str:
    """The JSON pointer (RFC 6901) of a path of keys and indexes, e.g. `/spec/instructions/0`."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)
