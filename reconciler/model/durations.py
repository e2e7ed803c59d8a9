"""Durations as users write them in policies (`14d`, `72h`, `1d12h`, `30m`, `2w`), at most ten years.

`parse_duration` reads one; what is wrong with one is said in words (`duration_problem`), with
the compact form of a duration written out (`2 weeks`, `P14D` → `2w`, `14d`), and a duration
is shown in words (`in_words`: `1d12h` → "1 day 12 hours").
"""

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


_UNIT_NAMES = {"w": "week", "d": "day", "h": "hour", "m": "minute", "s": "second"}
FORM = (
    "write whole numbers each followed by a unit letter: w (weeks), d (days), h (hours),"
    " m (minutes), s (seconds), e.g. 14d (14 days), 72h (72 hours) or 1d12h (1 day 12 hours)"
)


def parse_duration(text: str) -> timedelta:
    """Parse `14d`-style text; raise ValueError saying in words what is wrong when it is not one."""
    if not isinstance(text, str):
        raise ValueError(duration_problem(text))
    return _parse(text)


def duration_problem(value: object) -> str:
    """What is wrong with `value` as a duration, in words, with the compact form when one is
    plain (`2 weeks` → `2w`)."""
    if isinstance(value, str) and re.fullmatch(DURATION_PATTERN, value):
        try:
            _parse(value)
        except ValueError as err:
            return str(err)
        return f"{_shown(value)} is a valid duration ({in_words(value)})"
    shown = _shown(value) if isinstance(value, str) else repr(value)[:40]
    hint = _compact(value)
    if hint is not None and not _valid(hint):
        hint = None
    advice = f": did you mean {hint!r} ({in_words(hint)})?" if hint else ""
    return f"{shown} is not a duration: {FORM}{advice}"


def _valid(text: str) -> bool:
    try:
        _parse(text)
    except ValueError:
        return False
    return True


def in_words(text: str) -> str:
    """A duration in `14d` form as words: `1d12h` → "1 day 12 hours" (units as written)."""
    words = []
    for number, unit in _PART.findall(text):
        count = number.lstrip("0") or "0"
        shown = count if len(count) <= 12 else f"{count[:9]}…"
        words.append(f"{shown} {_UNIT_NAMES[unit]}{'' if count == '1' else 's'}")
    return " ".join(words)


# Durations people write elsewhere: `2 weeks`, `14 days and 12 hours`, `72hrs`, ISO 8601 `P14D`.
_WORDY_PART = re.compile(
    r"\s*([0-9]{1,9})\s*(weeks?|wks?|w|days?|d|hours?|hrs?|h|minutes?|mins?|m|seconds?|secs?|s)\b"
    r"\s*(?:,|and)?",
    re.IGNORECASE,
)
_ISO = re.compile(
    r"P(?:([0-9]{1,9})W)?(?:([0-9]{1,9})D)?(?:T(?:([0-9]{1,9})H)?(?:([0-9]{1,9})M)?(?:([0-9]{1,9})S)?)?"
)


def _compact(value: object) -> str | None:
    """The `14d` form of a duration written another way, or None when it is not plainly one."""
    if isinstance(value, bool) or not isinstance(value, str | int) or len(str(value)) > 60:
        return None
    text = str(value).strip()
    if isinstance(value, int) or text.isdigit():
        return None  # a bare number: days? hours? Nothing to suggest
    iso = _ISO.fullmatch(text.upper())
    if iso and any(iso.groups()):
        return "".join(f"{int(n)}{u}" for n, u in zip(iso.groups(), "wdhms", strict=True) if n)
    parts = _WORDY_PART.findall(text)
    if not parts or "".join(_WORDY_PART.sub("", text).split()):
        return None
    return "".join(f"{int(n)}{unit[0].lower()}" for n, unit in parts)


@functools.lru_cache(maxsize=256)  # a repository uses a handful of durations, judged per change
def _parse(text: str) -> timedelta:
    if not re.fullmatch(DURATION_PATTERN, text):
        raise ValueError(duration_problem(text))
    parts = _PART.findall(text)
    too_long = (
        f"{_shown(text)} ({in_words(text)}) is longer than the maximum of {MAX_DURATION_TEXT}:"
        " use a shorter duration"
    )
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
