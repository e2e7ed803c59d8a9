"""`reconciler token create|list|revoke`: API tokens for the read API.

Thin: options become a call to the store's token methods. `create` prints the new secret
alone on stdout (so `TOKEN=$(reconciler token create …)` works) and everything else on
stderr; the store keeps only its hash. `--environment` takes an environment's key or id, and
the store refuses one `reconciler.yaml` does not declare. `list` prints a table with headers,
labels and environment keys (`--format` as the other read commands).
"""

from __future__ import annotations

import click

from reconciler.cli import lookup
from reconciler.cli.options import store_option
from reconciler.cli.output import Table, emit, format_option, when
from reconciler.errors import ConfigError
from reconciler.model.limits import MAX_STORE_INTEGER
from reconciler.model.states import SCOPES
from reconciler.store import Store, TokenRecord, open_store


@click.group()
def token() -> None:
    """Create, list and revoke API tokens."""


@token.command("create")
@click.option("--member", "member", required=True, help="GitHub login of the member the token acts for.")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    type=click.Choice(SCOPES),
    help="Scope granted; repeatable.",
)
@click.option(
    "--environment",
    "environments",
    multiple=True,
    help="Environment the token may read (its key or id in reconciler.yaml); repeatable."
    " Default: every environment.",
)
@click.option("--label", default="", help="A note saying what the token is for.")
@store_option
def create(
    member: str, scopes: tuple[str, ...], environments: tuple[str, ...], label: str, store_url: str | None
) -> None:
    """Create a token and print it; it cannot be shown again."""
    with open_store(store_url) as store:
        ids = tuple(dict.fromkeys(_environment_id(store, e) for e in environments))
        secret, record = store.create_token(
            member, tuple(dict.fromkeys(scopes)), environment_ids=ids or None, label=label
        )
    click.echo(secret)
    click.echo(
        f"created token {record.id} ({record.prefix}…) for {record.member_login}; it is shown only once",
        err=True,
    )


def _environment_id(store: Store, value: str) -> int:
    """An environment's id from its id or key; the store checks that the id is declared."""
    if value.isascii() and value.isdigit():
        number = int(value)
        if not 1 <= number <= MAX_STORE_INTEGER:
            raise ConfigError(
                f"--environment {value}: an environment id is between 1 and {MAX_STORE_INTEGER}"
            )
        return number
    with store.reading() as reader:
        env = lookup.environment(reader, value)
    assert env is not None
    return env.id


@token.command("list")
@format_option
@store_option
def list_(fmt: str, store_url: str | None) -> None:
    """List tokens (ids, prefixes, members, scopes, environments, labels; never secrets)."""
    with open_store(store_url) as store:
        records = store.list_tokens()
        keys = {e.id: e.key for e in store.list_environments()}
    table = Table(
        ["ID", "PREFIX", "MEMBER", "SCOPES", "ENVIRONMENTS", "LABEL", "CREATED", "STATE"],
        [_row(record, keys) for record in records],
        empty="no tokens: create one with `reconciler token create`",
        styles={7: {"active": "green"}},
    )
    emit(fmt, [table], [_json(record, keys) for record in records] if fmt == "json" else None)


@token.command("revoke")
@click.argument("ident")
@store_option
def revoke(ident: str, store_url: str | None) -> None:
    """Revoke the token with this id or prefix."""
    with open_store(store_url) as store:
        record = store.revoke_token(ident)
    click.echo(f"revoked token {record.id} ({record.prefix}…) of {record.member_login}")


def _environments(record: TokenRecord, keys: dict[int, str]) -> str:
    if record.environment_ids is None:
        return "all"
    return ", ".join(f"{keys[i]} ({i})" if i in keys else str(i) for i in record.environment_ids)


def _row(record: TokenRecord, keys: dict[int, str]) -> list[object]:
    state = "active" if record.revoked_at is None else f"revoked {when(record.revoked_at)}"
    return [
        record.id,
        record.prefix + "…",
        record.member_login,
        ",".join(record.scopes),
        _environments(record, keys),
        record.label,
        when(record.created_at),
        state,
    ]


def _json(record: TokenRecord, keys: dict[int, str]) -> dict[str, object]:
    return {
        "id": record.id,
        "prefix": record.prefix,
        "member": record.member_login,
        "scopes": list(record.scopes),
        "environments": None
        if record.environment_ids is None
        else [{"id": i, "key": keys.get(i)} for i in record.environment_ids],
        "label": record.label,
        "created_at": record.created_at.isoformat().replace("+00:00", "Z"),
        "revoked_at": None
        if record.revoked_at is None
        else record.revoked_at.isoformat().replace("+00:00", "Z"),
    }
