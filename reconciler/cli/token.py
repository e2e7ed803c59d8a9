"""`reconciler token create|list|revoke`: API tokens for the read API.

Thin: options become a call to the store's token methods. `create` prints the new secret
alone on stdout (so `TOKEN=$(reconciler token create …)` works) and everything else on
stderr; the store keeps only its hash.
"""

from __future__ import annotations

import click

from reconciler.cli.options import store_option
from reconciler.model.states import SCOPES
from reconciler.store import TokenRecord, open_store


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
    type=click.IntRange(min=1),
    help="Environment id the token may read; repeatable. Default: every environment.",
)
@click.option("--label", default="", help="A note saying what the token is for.")
@store_option
def create(
    member: str, scopes: tuple[str, ...], environments: tuple[int, ...], label: str, store_url: str | None
) -> None:
    """Create a token and print it; it cannot be shown again."""
    with open_store(store_url) as store:
        secret, record = store.create_token(
            member, tuple(dict.fromkeys(scopes)), environment_ids=environments or None, label=label
        )
    click.echo(secret)
    click.echo(
        f"created token {record.id} ({record.prefix}…) for {record.member_login}; it is shown only once",
        err=True,
    )


@token.command("list")
@store_option
def list_(store_url: str | None) -> None:
    """List tokens (ids, prefixes, members, scopes; never secrets)."""
    with open_store(store_url) as store:
        records = store.list_tokens()
    if not records:
        click.echo("no tokens: create one with `reconciler token create`", err=True)
    for record in records:
        click.echo(_line(record))


@token.command("revoke")
@click.argument("ident")
@store_option
def revoke(ident: str, store_url: str | None) -> None:
    """Revoke the token with this id or prefix."""
    with open_store(store_url) as store:
        record = store.revoke_token(ident)
    click.echo(f"revoked token {record.id} ({record.prefix}…) of {record.member_login}")


def _line(record: TokenRecord) -> str:
    environments = "all" if record.environment_ids is None else ",".join(map(str, record.environment_ids))
    state = "active" if record.revoked_at is None else f"revoked {record.revoked_at:%Y-%m-%dT%H:%M:%SZ}"
    return "\t".join(
        [
            str(record.id),
            record.prefix + "…",
            record.member_login,
            ",".join(record.scopes),
            f"environments={environments}",
            f"created {record.created_at:%Y-%m-%dT%H:%M:%SZ}",
            state,
        ]
    )
