"""All flags of one environment, prepared once, evaluated for many callers.

An `Evaluator` is built from the flags as the store holds them at one version (deleted flags
are left out, as `/flags/definitions` leaves them out) and is immutable, so the API keeps one
per environment and flag-store version and shares it between requests and threads.

Since its flags never change, the same context always gets the same answers, except where
a date filter is read against the clock (`-30d`): an evaluator without date filters keeps
its recent answers (`remember`, a bounded least-recently-used memo keyed by the exact
context), so an application polling for the same user pays for the evaluation once per
flags version. Evaluators with date filters keep nothing and evaluate every time.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import TypeVar

import orjson

from reconciler.evaluation.conditions import CompiledFlag, evaluate_flag
from reconciler.evaluation.result import Context, FlagResult
from reconciler.model.flags import Flag

T = TypeVar("T")
# Answers kept per evaluator: enough for the users polling one worker between two flag
# changes, small enough that the memo stays within a few tens of megabytes at 200 flags.
MEMO_ENTRIES = 256
_CLOCK_OPERATORS = frozenset({"is_date_before", "is_date_after", "is_date_exact"})


class Evaluator:
    """The live flags of one environment; `group_types` maps a group type index to its name."""

    def __init__(self, flags: Iterable[Flag], group_types: Mapping[str, str] | None = None) -> None:
        live = sorted((f for f in flags if not f.deleted), key=lambda f: f.key)
        self._flags = {f.key: CompiledFlag(f) for f in live}
        self._ids = {f.id: f.key for f in live}
        self._group_types = dict(group_types or {})
        self.clock_dependent = any(
            prop.operator in _CLOCK_OPERATORS
            for f in live
            for group in f.filters.groups
            for prop in group.properties
        )
        self._memo: OrderedDict[Hashable, object] = OrderedDict()
        self._memo_lock = threading.Lock()

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(self._flags)

    def flag(self, key: str) -> Flag | None:
        compiled = self._flags.get(key)
        return compiled.flag if compiled else None

    def flag_by_id(self, flag_id: int) -> Flag | None:
        key = self._ids.get(flag_id)
        return None if key is None else self._flags[key].flag

    def evaluate(self, key: str, context: Context, now: dt.datetime | None = None) -> FlagResult | None:
        """One flag for `context`, or `None` when the environment has no live flag `key`."""
        compiled = self._flags.get(key)
        if compiled is None:
            return None
        return evaluate_flag(compiled, prepared(context), self._group_types, now or dt.datetime.now(dt.UTC))

    def evaluate_all(
        self, context: Context, only: Iterable[str] | None = None, now: dt.datetime | None = None
    ) -> dict[str, FlagResult]:
        """Every live flag (or those of `only` that exist) for `context`, by key."""
        exact = None if now is not None or self.clock_dependent else context_key(context)
        if exact is not None:
            wanted = None if only is None else tuple(only)
            key = ("evaluate_all", exact, wanted)
            return dict(self.remember(key, lambda: self._evaluate_all(context, wanted, None)))
        return self._evaluate_all(context, only, now)

    def _evaluate_all(
        self, context: Context, only: Iterable[str] | None, now: dt.datetime | None
    ) -> dict[str, FlagResult]:
        moment = now or dt.datetime.now(dt.UTC)
        context = prepared(context)
        keys = self._flags if only is None else [k for k in dict.fromkeys(only) if k in self._flags]
        return {k: evaluate_flag(self._flags[k], context, self._group_types, moment) for k in keys}

    def recall(self, key: Hashable) -> object | None:
        """What `remember` keeps under `key`, or None (never computes)."""
        with self._memo_lock:
            value = self._memo.get(key)
            if value is not None:
                self._memo.move_to_end(key)
            return value

    def remember(self, key: Hashable, compute: Callable[[], T]) -> T:
        """`compute()`, kept under `key` for later calls on this evaluator when its answers
        cannot depend on the clock. `key` must name everything the answer depends on besides
        the flags (the context, see `context_key`, and how it is rendered); what is kept is
        shared between callers, so it must not be changed by them."""
        if self.clock_dependent:
            return compute()
        with self._memo_lock:
            if key in self._memo:
                self._memo.move_to_end(key)
                return self._memo[key]  # type: ignore[return-value]
        value = compute()
        with self._memo_lock:
            self._memo[key] = value
            if len(self._memo) > MEMO_ENTRIES:
                self._memo.popitem(last=False)
        return value


def prepared(context: Context) -> Context:
    """The properties the SDKs evaluate with: the person's `distinct_id` and each group's
    `$group_key` are there unless the caller sent its own."""
    person = {"distinct_id": context.distinct_id, **context.person_properties}
    groups = {
        name: {"$group_key": key, **context.group_properties.get(name, {})}
        for name, key in context.groups.items()
    }
    return Context(context.distinct_id, person, dict(context.groups), {**context.group_properties, **groups})


def context_key(context: Context) -> bytes | None:
    """The context as exact bytes: equal for two contexts exactly when every id, property name
    and value (with its JSON type: `1`, `1.0`, `"1"` and `true` differ) is equal; `None` for a
    context JSON cannot hold exactly (keys that are not text, integers beyond 64 bits, ...),
    which is then never remembered."""
    try:
        return orjson.dumps(
            [context.distinct_id, context.person_properties, context.groups, context.group_properties],
            option=orjson.OPT_SORT_KEYS,
        )
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return None
