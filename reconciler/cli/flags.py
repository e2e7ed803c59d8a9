"""`reconciler flags list|show|history`: flag state and its history from the store.

`show` prints a flag as it is served (active, release conditions with their rollouts, variants,
payloads); `history` every version with the change request, commit and approvals that made it
and what changed from the version before. `--format json` prints the API's flag object
(`reconciler.api.posthog.shapes.flag_object`).
"""

from __future__ import annotations

import json
from typing import Any

import click

from reconciler.cli import lookup
from reconciler.cli.diff import MISSING, Difference, differences
from reconciler.cli.options import store_option
from reconciler.cli.output import Block, Fields, Table, emit, format_option, short, when
from reconciler.model.flags import Flag, FlagGroup
from reconciler.store import ChangeRequestRecord, FlagRecord, FlagVersionRecord, Reader, open_store

environment_option = click.option(
    "--environment", help="The environment (its key in reconciler.yaml); needed when there are several."
)


@click.group()
def flags() -> None:
    """Show flags as served, and their history."""


@flags.command("list")
@click.option("--environment", help="Only this environment (its key in reconciler.yaml).")
@click.option("--include-deleted", is_flag=True, help="Also list deleted flags.")
@format_option
@store_option
def list_(environment: str | None, include_deleted: bool, fmt: str, store_url: str | None) -> None:
    """Every flag of every environment (or of one), in id order."""
    with open_store(store_url) as store, store.reading() as reader:
        env = lookup.environment(reader, environment)
        environments = [env] if env else reader.list_environments()
        found = [
            (e.key, record)
            for e in environments
            for record in reader.list_flags(e.id, include_deleted=include_deleted)
        ]
        json_value = _flags_json(reader, found) if fmt == "json" else None
    rows = [
        [
            key,
            r.flag.key,
            r.flag.name,
            _state(r.flag),
            rollout(r.flag),
            r.flag.version,
            when(r.updated_at),
            short(r.commit),
        ]
        for key, r in found
    ]
    table = Table(
        ["ENVIRONMENT", "KEY", "NAME", "STATE", "ROLLOUT", "VERSION", "UPDATED", "COMMIT"],
        rows,
        empty="no flags",
        styles={3: {"on": "green", "off": "yellow", "deleted": "red"}},
    )
    emit(fmt, [table], json_value if fmt == "json" else None)


def _flags_json(reader: Reader, found: list[tuple[str, FlagRecord]]) -> list[dict[str, Any]]:
    """The API's flag objects, each with its environment's key."""
    from reconciler.api.directory import directory_of  # the API's shape, loaded only for JSON
    from reconciler.api.posthog import shapes

    directory = directory_of(reader)
    people = {env: reader.flag_people(env) for env in {r.environment_id for _key, r in found}}
    return [
        {
            **shapes.flag_object(r, directory, people[r.environment_id].get(r.flag.id, (None, None))),
            "environment": key,
        }
        for key, r in found
    ]


def _state(flag: Flag) -> str:
    return "deleted" if flag.deleted else "on" if flag.active else "off"


def rollout(flag: Flag) -> str:
    """A flag's release conditions in a few words: `50%`, `3 conditions`, `2 variants`."""
    groups = flag.filters.groups
    words = []
    if len(groups) == 1 and not groups[0].properties:
        words.append(_percent(groups[0].rollout_percentage))
    else:
        words.append(f"{len(groups)} conditions")
    variants = flag.filters.multivariate.variants if flag.filters.multivariate else []
    if variants:
        words.append(f"{len(variants)} variants")
    return ", ".join(words)


def _percent(value: float | None) -> str:
    return "100%" if value is None else f"{value:g}%"


@flags.command("show")
@click.argument("key")
@environment_option
@format_option
@store_option
def show(key: str, environment: str | None, fmt: str, store_url: str | None) -> None:
    """A flag as served: state, release conditions, variants and payloads."""
    with open_store(store_url) as store, store.reading() as reader:
        env = lookup.one_environment(reader, environment)
        record = _flag(reader, env.id, env.key, key)
        origin = reader.get_change_request(record.change_request_id) if record.change_request_id else None
        json_value = _flags_json(reader, [(env.key, record)])[0] if fmt == "json" else None
    emit(fmt, _detail(env.key, record, origin), json_value)


def _flag(reader: Reader, environment_id: int, environment: str, key: str) -> FlagRecord:
    from reconciler.errors import ConfigError

    record = reader.get_flag(environment_id, key)
    if record is None:
        raise ConfigError(
            f"no flag {key!r} in environment {environment!r}: "
            f"`reconciler flags list --environment {environment}` lists its flags"
        )
    return record


def _detail(environment: str, record: FlagRecord, origin: ChangeRequestRecord | None) -> list[Block]:
    flag = record.flag
    pairs: list[tuple[str, object]] = [
        ("environment", environment),
        ("id", flag.id),
        ("name", flag.name),
        ("state", _state(flag)),
        ("version", flag.version),
        ("tags", ", ".join(flag.tags)),
        ("updated", when(record.updated_at)),
        ("commit", record.commit),
        ("change request", f"{origin.name} ({origin.id})" if origin else ""),
    ]
    blocks: list[Block] = [
        Fields([(k, v) for k, v in pairs if v not in ("", None)], title=f"flag {flag.key}"),
        Table(
            ["#", "CONDITIONS", "ROLLOUT", "VARIANT"],
            [
                [i, conditions(g), _percent(g.rollout_percentage), g.variant or ""]
                for i, g in enumerate(flag.filters.groups)
            ],
            title="release conditions",
            empty="no release conditions: nobody gets the flag",
        ),
    ]
    if flag.filters.multivariate:
        variants = flag.filters.multivariate.variants
        blocks.append(
            Table(
                ["VARIANT", "NAME", "ROLLOUT"],
                [[v.key, v.name or "", _percent(v.rollout_percentage)] for v in variants],
                title="variants",
            )
        )
    if flag.filters.payloads:
        payloads = sorted(flag.filters.payloads.items())
        blocks.append(Table(["FOR", "PAYLOAD"], [[k, _compact(v)] for k, v in payloads], title="payloads"))
    return blocks


def conditions(group: FlagGroup) -> str:
    """`email icontains @acme.com and country exact ["DE", "FR"]`; `everyone` without properties."""
    if not group.properties:
        return "everyone"
    return " and ".join(f"{p.key} {p.operator} {_compact(p.value)}" for p in group.properties)


def _compact(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(", ", ": "), default=str)


# --- history ---------------------------------------------------------------------------------


@flags.command("history")
@click.argument("key")
@environment_option
@click.option(
    "--limit", default=100, show_default=True, type=click.IntRange(1, 10_000), help="Newest versions to show."
)
@format_option
@store_option
def history(key: str, environment: str | None, limit: int, fmt: str, store_url: str | None) -> None:
    """Every version of a flag, newest first: who changed what, through which change request."""
    with open_store(store_url) as store, store.reading() as reader:
        env = lookup.one_environment(reader, environment)
        versions = reader.flag_history(env.id, key)
        if not versions:
            _flag(reader, env.id, env.key, key)  # says there is no such flag
        first = max(0, len(versions) - limit)
        origins = _origins(reader, versions[first:])
    steps = [
        (
            versions[i],
            origins.get(versions[i].change_request_id or ""),
            flag_differences(versions[i - 1].flag if i else None, versions[i].flag),
        )
        for i in range(len(versions) - 1, first - 1, -1)
    ]
    rows = [
        [
            v.flag.version,
            when(v.created_at),
            cr.name if cr else "",
            short(v.commit),
            ", ".join(_approvers(cr)),
            _what_changed(diffs),
        ]
        for v, cr, diffs in steps
    ]
    table = Table(
        ["VERSION", "WHEN", "CHANGE REQUEST", "COMMIT", "APPROVED BY", "WHAT CHANGED"],
        rows,
        title=f"flag {key} in {env.key}",
        note=f"the newest {limit} of {len(versions)} versions; --limit shows more" if first else "",
    )
    value = [_step_json(v, cr, diffs) for v, cr, diffs in steps] if fmt == "json" else None
    emit(fmt, [table], value)


def flag_differences(before: Flag | None, after: Flag) -> list[Difference]:
    """What changed from `before` to `after`, leaf by leaf (the version number aside)."""
    old = {} if before is None else before.model_dump(mode="json", exclude={"version"})
    return differences(old, after.model_dump(mode="json", exclude={"version"}))


def _what_changed(diffs: list[Difference]) -> str:
    if diffs and all(d.before is MISSING for d in diffs):
        return "created"  # the first version: everything is new
    return "; ".join(d.text() for d in diffs) or "nothing (a version that changed no value)"


def _origins(reader: Reader, versions: list[FlagVersionRecord]) -> dict[str, ChangeRequestRecord]:
    ids = {v.change_request_id for v in versions if v.change_request_id}
    found = {i: reader.get_change_request(i) for i in sorted(ids)}
    return {i: r for i, r in found.items() if r is not None}


def _approvers(cr: ChangeRequestRecord | None) -> list[str]:
    if cr is None:
        return []
    return [v.login for v in cr.votes if v.counted and v.decision == "approved"]


def _step_json(
    version: FlagVersionRecord, cr: ChangeRequestRecord | None, diffs: list[Difference]
) -> dict[str, Any]:
    return {
        "version": version.flag.version,
        "created_at": version.created_at.isoformat().replace("+00:00", "Z"),
        "commit": version.commit,
        "change_request": None
        if cr is None
        else {"id": cr.id, "name": cr.name, "file": cr.file, "approved_by": _approvers(cr)},
        "flag": version.flag.model_dump(mode="json"),
        "changes": [
            {
                "pointer": d.pointer,
                "before": None if d.before is MISSING else d.before,
                "after": None if d.after is MISSING else d.after,
            }
            for d in diffs
        ],
    }
