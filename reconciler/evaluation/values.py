"""Property values as PostHog's evaluators read them: text, truth, numbers, dates and regexes.

Values arrive as parsed JSON (from a request body) or as a flag's filter values. Each helper
answers what the SDKs' local evaluation answers for the same value, or raises `Undecided` where
local evaluation gives up and asks the server; `properties.py` then applies the server's rule.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from decimal import Decimal
from functools import lru_cache
from typing import Any

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_RELATIVE = re.compile(r"^-?(?P<number>[0-9]+)(?P<unit>[a-z])$")
_YEAR = re.compile(r"\d{4}")
_UNITS = {"h": "hours", "d": "days", "w": "weeks"}


class Undecided(Exception):
    """Local evaluation cannot decide with what it was given; the server's rule decides."""


def _float_text(value: float) -> str:
    if not math.isfinite(value):
        raise Undecided("a non-finite number has no JSON text")
    text = repr(value)
    if "e" not in text:
        return text
    mantissa, exponent_text = text.split("e")
    exponent = int(exponent_text)
    if -6 < exponent < 0:
        return format(Decimal(text), "f")
    return f"{mantissa}e{'+' if exponent >= 0 else ''}{exponent}"


def json_text(value: Any) -> str:
    """The compact JSON text of a value, keys sorted, as PostHog compares non-text values."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float_text(value)
    if isinstance(value, list):
        return "[" + ",".join(json_text(item) for item in value) + "]"
    if isinstance(value, dict):
        items = (f"{json.dumps(str(k), ensure_ascii=False)}:{json_text(value[k])}" for k in sorted(value))
        return "{" + ",".join(items) + "}"
    raise Undecided(f"a {type(value).__name__} is not a JSON value")


def text(value: Any) -> str:
    """A value as text: strings as they are, anything else as its JSON text."""
    return value if isinstance(value, str) else json_text(value)


def ascii_lower(value: Any) -> str:
    return text(value).translate(_ASCII_LOWER)


def is_boolean_like(value: Any) -> bool:
    """`true`/`false` in any case, a boolean, or a list of only those."""
    if isinstance(value, bool):
        return True
    if isinstance(value, str):
        return value.lower() in ("true", "false")
    if isinstance(value, list):
        return all(is_boolean_like(item) for item in value)
    return False


def is_true(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value.lower() == "true"
    if isinstance(value, list):
        return all(is_true(item) for item in value)
    return False


def number(value: Any) -> float | None:
    """A finite number from a number or numeric text; `None` for anything else."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    if isinstance(value, str) and not _NUMBER.fullmatch(value):
        return None
    try:
        parsed = float(value)
    except (ValueError, OverflowError):
        return None
    return parsed if math.isfinite(parsed) else None


def parse_datetime(value: str) -> dt.datetime:
    """ISO 8601 text (`Z`, ` UTC` and a bare year accepted), naive times read as UTC."""
    raw = value.strip()
    if raw.endswith("Z"):
        raw = raw[:-1] + "+00:00"
    elif raw.upper().endswith(" UTC"):
        raw = raw[:-4] + "+00:00"
    elif _YEAR.fullmatch(raw):
        today = dt.datetime.now()
        return dt.datetime(int(raw), today.month, today.day, tzinfo=dt.UTC)
    raw = re.sub(r" ([+-]\d{2}:\d{2})$", r"\1", raw)
    parsed = dt.datetime.fromisoformat(raw)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)


def _months_back(moment: dt.datetime, months: int) -> dt.datetime | None:
    index = moment.year * 12 + moment.month - 1 - months
    year, month = divmod(index, 12)
    if not 1 <= year <= 9999:
        return None
    day = moment.day
    # Step back one month at a time so the day is clamped on the way (31 March - 2 months
    # is 28 January, through 28 February).
    for step in range(moment.year * 12 + moment.month - 2, index - 1, -1):
        if day <= 28:
            break
        y, m = divmod(step, 12)
        day = min(day, _month_length(y, m + 1))
    return moment.replace(year=year, month=month + 1, day=day)


def _month_length(year: int, month: int) -> int:
    following = dt.date(year + (month == 12), month % 12 + 1, 1)
    return (following - dt.timedelta(days=1)).day


def relative_date(value: str, now: dt.datetime) -> dt.datetime | None:
    """`-7d`-style dates (h, d, w, m, y) before `now`; `None` when `value` is not one."""
    match = _RELATIVE.search(value)
    if match is None:
        return None
    amount, unit = int(match["number"]), match["unit"]
    if amount >= 10_000:
        return None
    if unit in _UNITS:
        return now - dt.timedelta(**{_UNITS[unit]: amount})
    if unit == "m":
        return _months_back(now, amount)
    if unit == "y":
        year = now.year - amount
        if not 1 <= year <= 9999:
            return None
        day = 28 if amount > 0 and (now.month, now.day) == (2, 29) else now.day
        return now.replace(year=year, day=day)
    return None


def filter_date(value: Any, now: dt.datetime) -> dt.datetime:
    """The moment a date filter names, relative or absolute; `Undecided` when it names none."""
    try:
        moment = relative_date(str(value), now) or parse_datetime(str(value))
    except (ValueError, OverflowError) as error:
        raise Undecided(f"the flag's date {value!r} is not a date") from error
    return moment


class Pattern:
    """A regex compiled the way PostHog's engines agree on it: `$` only at the very end."""

    def __init__(self, source: str) -> None:
        self.source = source
        try:
            self.regex: re.Pattern[str] | None = re.compile(_strict_end(source))
        except (re.error, RecursionError, OverflowError):
            self.regex = None  # an invalid pattern matches nothing, as in PostHog

    def search(self, value: str) -> bool | None:
        if self.source == "":
            return True
        if self.regex is None:
            return None
        return self.regex.search(value) is not None


def _strict_end(source: str) -> str:
    """Python's `$` also matches before a final newline; PostHog's (Rust) does not."""
    out: list[str] = []
    in_class = escaped = False
    for char in source:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "$":
            out.append(r"\Z")
            continue
        out.append(char)
    return "".join(out)


@lru_cache(maxsize=1024)
def pattern(source: str) -> Pattern:
    return Pattern(source)
