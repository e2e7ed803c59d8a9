"""Durations as users write them in policies (`14d`, `72h`, `1d12h`, `30m`, `2w`), at most ten years."""

from __future__ import annotations

import functools
import re
from datetime import timedelta

from reconciler.model.limits import MAX_DURATION, MAX_DURATION_TEXT

DURATION_PATTERN = r"^(?:[0-9]+[wdhms])+$"
_PART = re.compile(r"([0-9]+)([wdhms])")
_UNIT_SECONDS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
# More digits than this is beyond the cap in any unit; checked before `int()`, which refuses
# numbers of thousands of digits and would otherwise be asked to convert them.
_MAX_DIGITS = len(str(int(MAX_DURATION.total_seconds())))


def parse_duration(text: str) -> timedelta:
    """Parse `14d`-style text; raise ValueError naming the accepted form when it is not one."""
    if not isinstance(text, str):
        raise ValueError(
            f"{text!r} is not a duration: use a number and a unit (w, d, h, m, s), e.g. 14d or 72h"
        )
    return _parse(text)


@functools.lru_cache(maxsize=256)  # a repository uses a handful of durations, judged per change
def _parse(text: str) -> timedelta:
    if not re.fullmatch(DURATION_PATTERN, text):
        raise ValueError(
            f"{text!r} is not a duration: use a number and a unit (w, d, h, m, s), e.g. 14d or 72h"
        )
    parts = _PART.findall(text)
    too_long = f"{_shown(text)} is longer than the maximum of {MAX_DURATION_TEXT}: use a shorter duration"
    if any(len(n.lstrip("0")) > _MAX_DIGITS for n, _unit in parts):
        raise ValueError(too_long)
    seconds = sum(int(n.lstrip("0") or "0") * _UNIT_SECONDS[unit] for n, unit in parts)
    if seconds == 0:
        raise ValueError(f"{_shown(text)} is a zero duration: it must be longer than nothing")
    if seconds > MAX_DURATION.total_seconds():
        raise ValueError(too_long)
    return timedelta(seconds=seconds)


def _shown(text: str) -> str:
    return repr(text) if len(text) <= 40 else repr(text[:37] + "...")
