"""`reconciler status`: where the reconciler stands, what is waiting, and what to do about it.

Reads the store only (the position every pass records, the change requests by state and the
rule changes not in force), so it works against the store of a running `reconciler run` as
well as after a one-off `reconciler reconcile`. `--format json` carries the fields of
`GET /api/reconciler/status` (`api.ops.position_fields`), and what the table adds.
"""

from __future__ import annotations

from typing import Any

import click

from reconciler.cli.options import store_option
from reconciler.cli.output import Block, Fields, Table, emit, format_option, short, when
from reconciler.decision.regime import RULES_INVALID_KEY
from reconciler.model.states import CHANGE_REQUEST_STATES
from reconciler.store import ChangeRequestFilter, Position, Reader, open_store

RULES_NOT_IN_FORCE = "rules_not_in_force"  # Position.details: the latest rule changes rejected


@click.command("status")
@format_option
@store_option
def status(fmt: str, store_url: str | None) -> None:
    """Sync status, last pass and error with what to do, change requests by state, rejected rule changes."""
    with open_store(store_url) as store, store.reading() as reader:
        position = reader.position()
        counts = _counts(reader)
        environments = [
            (e.key, e.id, len(reader.list_flags(e.id, include_deleted=False)))
            for e in reader.list_environments()
        ]
    rejected = [r for r in position.details.get(RULES_NOT_IN_FORCE) or [] if isinstance(r, dict)]
    emit(
        fmt,
        _blocks(position, counts, environments, rejected),
        _json(position, counts, environments, rejected) if fmt == "json" else None,
    )


def _counts(reader: Reader) -> dict[str, int]:
    return {
        state: reader.list_change_requests(ChangeRequestFilter(states=(state,), limit=0))[0]
        for state in CHANGE_REQUEST_STATES
    }


def advice(position: Position) -> str:
    """What to do about the position, in one sentence; empty when nothing needs doing."""
    if position.sync_status == "Diverged":
        return (
            "the tracked branch was rewritten (force-push): check what changed, then run "
            "`reconciler reconcile --accept-rewrite` to resume from the new head"
        )
    if RULES_INVALID_KEY in position.details:
        return "no valid rules are in force: repair the file the error names; nothing applies until then"
    if position.last_error:
        return "the last pass failed and is retried on the next poll; fix what the error names"
    if position.sync_status == "Unknown" or position.last_fetched_commit is None:
        return "no pass has run yet: run `reconciler reconcile --repo …` once, or `reconciler run`"
    return ""


def _blocks(
    position: Position,
    counts: dict[str, int],
    environments: list[tuple[str, int, int]],
    rejected: list[dict[str, Any]],
) -> list[Block]:
    pairs: list[tuple[str, object]] = [
        ("sync", position.sync_status),
        ("last fetched", f"{short(position.last_fetched_commit)} at {when(position.last_fetched_at)}"),
        ("last applied", f"{short(position.last_applied_commit)} at {when(position.last_applied_at)}"),
    ]
    if position.diverged_commit:
        pairs.append(("diverged at", position.diverged_commit))
    if position.last_error:
        pairs.append(("last error", f"{position.last_error} ({when(position.last_error_at)})"))
    todo = advice(position)
    if todo:
        pairs.append(("what to do", todo))
    return [
        Fields(pairs, title="reconciler"),
        Table(["STATE", "CHANGE REQUESTS"], [[s, n] for s, n in counts.items()], title="change requests"),
        Table(["ENVIRONMENT", "ID", "FLAGS"], environments, title="environments", empty="none yet"),
        Table(
            ["FILES", "COMMIT", "WHY NOT IN FORCE"],
            [
                [", ".join(map(str, r.get("files") or [])), short(r.get("commit")), r.get("reason", "")]
                for r in rejected
            ],
            title="rule changes not in force (the previous rules stay)",
            empty="none",
        ),
    ]


def _json(
    position: Position,
    counts: dict[str, int],
    environments: list[tuple[str, int, int]],
    rejected: list[dict[str, Any]],
) -> dict[str, Any]:
    from reconciler.api.ops import position_fields  # the API's own shape, loaded only for JSON

    return {
        **position_fields(position),
        "advice": advice(position) or None,
        "change_requests": counts,
        "environments": [{"key": k, "id": i, "flags": n} for k, i, n in environments],
        "rules_not_in_force": rejected,
    }
