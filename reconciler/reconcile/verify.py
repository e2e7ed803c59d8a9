"""`reconciler verify`: does every flag in the store hold what the applied change requests made it?

The honest replay of the applied log is the reconcile pass itself: it re-runs over the
repository's first-parent history up to the store's last applied commit, into an empty scratch
store, with the same judgement (rules in force, approvals, engine). Every flag's live state in
the store is then compared with the replayed one; a difference is drift (someone edited the
database), reported per environment and flag with the differing fields. It reads the store,
never writes it.

The replay runs at the time of the store's last pass (`last_fetched_at`), so scheduled changes
that the live store had applied are due in the replay too. A store that accepted a rewritten
history (`--accept-rewrite`) may have applied commits the branch no longer has; the replay
cannot see those, so their flags are reported as drift.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal

from reconciler.engine import FieldChange
from reconciler.engine.intent import build_intent
from reconciler.github import GitHubClient
from reconciler.model.flags import Flag
from reconciler.reconcile.replay import replayed_store
from reconciler.reconcile.run import ReconcileConfig
from reconciler.store import Store

DriftKind = Literal["changed", "missing", "unexpected"]


@dataclass(frozen=True)
class FlagDrift:
    """One flag whose live state differs from the replay: `before` is the replay, `after` the store."""

    environment: str
    environment_id: int
    flag: str
    kind: DriftKind  # changed; missing from the store; unexpected (no change request made it)
    fields: tuple[FieldChange, ...] = ()

    def describe(self) -> str:
        where = f"{self.environment}/{self.flag}"
        if self.kind == "missing":
            return f"{where}: missing from the store (the applied change requests create it)"
        if self.kind == "unexpected":
            return f"{where}: in the store, but no applied change request creates it"
        diffs = "; ".join(
            f"{c.field}: expected {_short(c.before)}, store has {_short(c.after)}" for c in self.fields
        )
        return f"{where}: {diffs}"


@dataclass(frozen=True)
class VerifyReport:
    """The outcome of a verification: how much was compared and every drift found."""

    store: str
    replayed_to: str | None
    flags_checked: int
    drift: tuple[FlagDrift, ...]

    @property
    def clean(self) -> bool:
        return not self.drift

    def as_json(self) -> dict[str, Any]:
        return {
            "store": self.store,
            "replayed_to": self.replayed_to,
            "flags_checked": self.flags_checked,
            "clean": self.clean,
            "drift": [
                {
                    "environment": d.environment,
                    "environment_id": d.environment_id,
                    "flag": d.flag,
                    "kind": d.kind,
                    "fields": [c.as_display() for c in d.fields],
                }
                for d in self.drift
            ],
        }

    def render_text(self) -> str:
        where = f"replayed up to {self.replayed_to[:12]}" if self.replayed_to else "nothing applied yet"
        lines = [f"{self.store}: {self.flags_checked} flags checked, {where}"]
        lines += [f"drift: {d.describe()}" for d in self.drift]
        lines.append(
            "clean: every flag matches its applied change requests"
            if self.clean
            else f"{len(self.drift)} flags drifted"
        )
        return "\n".join(lines) + "\n"


def verify_store(
    store: Store, config: ReconcileConfig, *, github: GitHubClient | None = None, now: datetime | None = None
) -> VerifyReport:
    """Replay `config`'s repository up to the store's last applied commit and compare every flag."""
    position = store.position()
    until = position.last_applied_commit
    at = now or position.last_fetched_at or position.last_applied_at or datetime.now(UTC)
    with replayed_store(replace(config, accept_rewrite=False), until=until, now=at, github=github) as replay:
        expected = _flags(replay)
        names = {e.id: e.key for s in (replay, store) for e in s.list_environments()}
    live = _flags(store)
    drift = [
        d
        for key in sorted(expected.keys() | live.keys())
        if (d := _compare(names.get(key[0], str(key[0])), key, expected.get(key), live.get(key))) is not None
    ]
    return VerifyReport(store.url, until, len(live.keys() | expected.keys()), tuple(drift))


def _flags(store: Store) -> dict[tuple[int, str], Flag]:
    """Every flag of every environment the store knows, deleted ones included."""
    found: dict[tuple[int, str], Flag] = {}
    env_ids = {e.id for e in store.list_environments()}
    for env_id in sorted(env_ids):
        visible = {r.flag.key for r in store.list_flags(env_id, include_deleted=False)}
        for record in store.list_flags(env_id, include_deleted=True):
            flag = record.flag
            if flag.deleted == (flag.key in visible):  # the row's deleted column says otherwise: it wins
                flag = flag.model_copy(update={"deleted": flag.key not in visible})
            found[(env_id, flag.key)] = flag
    return found


def _compare(env: str, key: tuple[int, str], expected: Flag | None, live: Flag | None) -> FlagDrift | None:
    if expected is None:
        return FlagDrift(env, key[0], key[1], "unexpected")
    if live is None:
        return FlagDrift(env, key[0], key[1], "missing")
    if expected == live:
        return None
    fields = [FieldChange(name, getattr(expected, name), getattr(live, name)) for name in ("id", "version")]
    changes = [c for c in fields if c.before != c.after] + build_intent(expected, live, []).changes
    return FlagDrift(env, key[0], key[1], "changed", tuple(changes))


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
