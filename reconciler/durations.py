"""Durations as users write them in policies (`14d`, `72h`, `1d12h`, `30m`, `2w`)."""

from __future__ import annotations

import functools
import re
from datetime import timedelta

DURATION_PATTERN = r"^(?:[0-9]+[wdhms])+$"
_PART = re.compile(r"([0-9]+)([wdhms])")
_UNIT_SECONDS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}


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
    seconds = sum(int(n) * _UNIT_SECONDS[unit] for n, unit in _PART.findall(text))
    if seconds == 0:
        raise ValueError(f"{text!r} is a zero duration: it must be longer than nothing")
    return timedelta(seconds=seconds)
