"""The response cache: bounded in entries and bytes, oldest use evicted first."""

from __future__ import annotations

from reconciler.api.context import ResponseCache


def test_cache_is_bounded_by_entries_and_bytes() -> None:
    cache = ResponseCache(size=3, max_bytes=160)
    for n in range(3):
        cache.put((n,), b"x" * 10)
    assert cache.get((0,)) == b"x" * 10  # now the most recently used
    cache.put((3,), b"y" * 10)
    assert cache.get((1,)) is None and cache.get((0,)) is not None
    cache.put((4,), b"z" * 10)
    cache.put((5,), b"w" * 10)
    assert (
        cache.bytes == 30
        and cache.get((2,)) is None
        and cache.get((3,)) is None
        and cache.get((0,)) is not None
    )
    cache.put((6,), b"q" * 11)  # over a sixteenth of the budget: never cached
    assert cache.get((6,)) is None and cache.bytes == 30


def test_replacing_an_entry_keeps_the_byte_count_right() -> None:
    cache = ResponseCache(size=10, max_bytes=1600)
    cache.put(("a",), b"1" * 50)
    cache.put(("a",), b"2" * 20)
    assert cache.bytes == 20 and cache.get(("a",)) == b"2" * 20
