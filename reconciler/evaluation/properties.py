"""One property filter against the properties a caller sent.

`match` first answers as the SDKs' local evaluation does. Where local evaluation cannot decide
(a property the caller did not send, an operator or value the SDKs leave to the server), the
SDK would ask PostHog's server, so `complete=True` answers with the server's rule instead:
the caller's properties are all there is, so a missing property is absent, not unknown.
Without `complete`, such a filter raises `Undecided`, so a caller can tell which answers the
SDKs would have computed themselves.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from reconciler.evaluation.values import (
    Undecided,
    ascii_lower,
    filter_date,
    is_boolean_like,
    is_true,
    number,
    parse_datetime,
    pattern,
    text,
)
from reconciler.model.flags import PropertyFilter


class NeedsServer(Undecided):
    """Local evaluation stops the whole flag here (a cohort it does not have)."""


class CohortMissing(Exception):
    """The filter names a cohort this environment does not define."""


# The operators the SDKs evaluate locally; the rest of ours only the server knows.
_LOCAL_OPERATORS = frozenset(
    {"exact", "is_not", "icontains", "not_icontains", "regex", "not_regex", "gt", "gte", "lt", "lte"}
    | {"is_set", "is_not_set", "is_date_before", "is_date_after"}
)
_TEXT_OPERATORS = frozenset({"icontains", "not_icontains", "regex", "not_regex"})
_NUMERIC = frozenset({"gt", "gte", "lt", "lte"})
# The server's answer when the caller did not send the property at all.
_ABSENT_MATCHES = frozenset({"is_not", "not_icontains", "not_regex", "is_not_set"})


def match(prop: PropertyFilter, values: Mapping[str, Any], now: dt.datetime, *, complete: bool) -> bool:
    """Whether `values` satisfy `prop`; see the module docstring for `complete`."""
    if prop.type == "flag":
        # PostHog's flag dependencies use the `flag_evaluates_to` operator, which our model
        # does not offer: the SDKs take any other shape as a definite non-match.
        return False
    if prop.type == "cohort":
        if complete:
            raise CohortMissing(str(prop.value))
        raise NeedsServer(f"cohort {prop.value} is not known locally")
    try:
        return _local(prop, values, now)
    except Undecided:
        if not complete:
            raise
        return _server(prop, values, now)


def _local(prop: PropertyFilter, values: Mapping[str, Any], now: dt.datetime) -> bool:
    operator = prop.operator
    if operator not in _LOCAL_OPERATORS:
        raise Undecided(f"operator {operator} is evaluated by the server")
    if prop.key not in values:
        raise Undecided(f"property {prop.key} was not sent")
    if operator in ("is_set", "is_not_set"):
        return operator == "is_set"
    actual = values[prop.key]
    if operator in _NUMERIC:
        return _numeric(operator, prop.value, actual)
    if actual is None and operator not in _TEXT_OPERATORS and operator not in ("exact", "is_not"):
        return False
    if operator in ("exact", "is_not"):
        return _exact(prop.value, actual) == (operator == "exact")
    if operator in ("icontains", "not_icontains"):
        return (ascii_lower(prop.value) in ascii_lower(actual)) == (operator == "icontains")
    if operator in ("regex", "not_regex"):
        found = pattern(str(prop.value)).search(text(actual))
        return False if found is None else found == (operator == "regex")
    return _date(operator, filter_date(prop.value, now), _local_date(actual))


def _numeric(operator: str, expected: Any, actual: Any) -> bool:
    bound = number(expected)
    if bound is None:
        raise Undecided("the flag's value is not a number")
    got = number(actual)
    if got is None:
        return False
    return {"gt": got > bound, "gte": got >= bound, "lt": got < bound, "lte": got <= bound}[operator]


def _exact(expected: Any, actual: Any) -> bool:
    actual_text = text(actual).lower()
    if expected == []:
        return is_true(actual)
    if is_boolean_like(expected):
        return is_true(expected) == is_true(actual)
    if isinstance(expected, list):
        return actual_text in [text(candidate).lower() for candidate in expected]
    return text(expected).lower() == actual_text


def _local_date(actual: Any) -> dt.datetime:
    if not isinstance(actual, str):
        raise Undecided("the property is not a date text")
    try:
        return parse_datetime(actual)
    except (ValueError, OverflowError) as error:
        raise Undecided("the property is not a date") from error


def _date(operator: str, bound: dt.datetime, actual: dt.datetime) -> bool:
    if operator == "is_date_before":
        return actual < bound
    if operator == "is_date_after":
        return actual > bound
    return actual == bound


def _server(prop: PropertyFilter, values: Mapping[str, Any], now: dt.datetime) -> bool:
    """PostHog's server rule, for what local evaluation leaves undecided."""
    operator = prop.operator
    if operator in ("in", "not_in"):
        return False  # only meaningful on cohorts
    if prop.key not in values:
        return operator in _ABSENT_MATCHES
    if operator in ("is_set", "is_not_set"):
        return operator == "is_set"
    if operator in ("is_date_exact", "is_date_before", "is_date_after"):
        return _server_date(operator, prop.value, values[prop.key], now)
    return False  # a filter value the operator cannot use matches nothing


def _server_date(operator: str, expected: Any, actual: Any, now: dt.datetime) -> bool:
    try:
        bound = filter_date(expected, now)
    except Undecided:
        return False
    moment = _epoch(actual)
    if moment is None and isinstance(actual, str):
        try:
            moment = parse_datetime(actual)
        except (ValueError, OverflowError):
            return False
    return moment is not None and _date(operator, bound, moment)


def _epoch(value: Any) -> dt.datetime | None:
    """A number, or numeric text, as seconds since 1970 (the server's reading of a timestamp)."""
    seconds = number(value)
    if seconds is None:
        return None
    try:
        return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)
    except (OverflowError, OSError, ValueError):
        return None
