"""All flags of one environment, prepared once, evaluated for many callers.

An `Evaluator` is built from the flags as the store holds them at one version (deleted flags
are left out, as `/flags/definitions` leaves them out) and is immutable, so the API keeps one
per environment and flag-store version and shares it between requests and threads.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping

from reconciler.evaluation.conditions import CompiledFlag, evaluate_flag
from reconciler.evaluation.result import Context, FlagResult
from reconciler.model.flags import Flag


class Evaluator:
    """The live flags of one environment; `group_types` maps a group type index to its name."""

    def __init__(self, flags: Iterable[Flag], group_types: Mapping[str, str] | None = None) -> None:
        live = sorted((f for f in flags if not f.deleted), key=lambda f: f.key)
        self._flags = {f.key: CompiledFlag(f) for f in live}
        self._group_types = dict(group_types or {})

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(self._flags)

    def flag(self, key: str) -> Flag | None:
        compiled = self._flags.get(key)
        return compiled.flag if compiled else None

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
        moment = now or dt.datetime.now(dt.UTC)
        context = prepared(context)
        keys = self._flags if only is None else [k for k in dict.fromkeys(only) if k in self._flags]
        return {k: evaluate_flag(self._flags[k], context, self._group_types, moment) for k in keys}


def prepared(context: Context) -> Context:
    """The properties the SDKs evaluate with: the person's `distinct_id` and each group's
    `$group_key` are there unless the caller sent its own."""
    person = {"distinct_id": context.distinct_id, **context.person_properties}
    groups = {
        name: {"$group_key": key, **context.group_properties.get(name, {})}
        for name, key in context.groups.items()
    }
    return Context(context.distinct_id, person, dict(context.groups), {**context.group_properties, **groups})
