"""API tokens: only a hash is stored, authentication, scopes, revocation, and the CLI."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from reconciler.cli import main
from reconciler.errors import ConfigError, StoreError
from reconciler.model.documents import Member, MembersSpec
from reconciler.store import EnvironmentRecord, Store
from tests.support.apiseed import Tokens
from tests.support.storedata import at


def _dump(store: Store) -> str:
    """Every value of the tokens table, as text: what someone reading the database would see."""
    with store.engine.connect() as conn:
        return json.dumps([list(map(str, row)) for row in conn.execute(sa.text("SELECT * FROM api_tokens"))])


def test_a_token_authenticates_and_only_its_hash_is_stored(store: Store) -> None:
    secret, record = store.create_token(
        "ada", ("approvals:read", "feature_flag:read"), environment_ids=(1, 2), label="dashboard"
    )
    assert secret.startswith("rcn_")
    assert len(secret) > 40
    assert secret not in _dump(store)
    assert secret[len(record.prefix) :] not in _dump(store)
    assert store.authenticate(secret) == record
    assert (record.member_login, record.scopes, record.environment_ids, record.label) == (
        "ada",
        ("approvals:read", "feature_flag:read"),
        (1, 2),
        "dashboard",
    )
    assert record.allows("feature_flag:read")
    assert not record.allows("activity_log:read")
    assert record.may_read_environment(2)
    assert not record.may_read_environment(3)


def test_unknown_tokens_do_not_authenticate(store: Store) -> None:
    secret, _ = store.create_token("ada", ("approvals:read",))
    assert store.authenticate(secret + "x") is None
    assert store.authenticate("") is None
    assert store.authenticate(secret[:-1]) is None


def test_each_token_is_distinct(store: Store) -> None:
    first, a = store.create_token("ada", ("approvals:read",))
    second, b = store.create_token("ada", ("approvals:read",))
    assert first != second
    assert a.id != b.id
    assert [t.id for t in store.list_tokens()] == [a.id, b.id]


def test_revoked_tokens_stop_authenticating(store: Store) -> None:
    secret, record = store.create_token("ada", ("approvals:read",))
    other, _ = store.create_token("ada", ("approvals:read",))
    revoked = store.revoke_token(record.prefix, at=at(1))
    assert revoked.revoked_at == at(1)
    assert store.authenticate(secret) is None
    assert store.authenticate(other) is not None
    assert store.revoke_token(str(record.id)).revoked_at == at(1)  # revoking twice keeps the first time
    with pytest.raises(StoreError, match="no token 'rcn_nope'"):
        store.revoke_token("rcn_nope")


def test_scopes_must_exist(store: Store) -> None:
    with pytest.raises(ConfigError, match="unknown scope flags:write"):
        store.create_token("ada", ("flags:write",))
    with pytest.raises(ConfigError, match="at least one scope"):
        store.create_token("ada", ())


def test_once_members_are_known_the_login_must_be_one(store: Store) -> None:
    spec = MembersSpec(members=[Member(login="Ada", email="ada@example.com")])
    with store.transaction() as tx:
        tx.replace_members(spec, file="members.yaml", commit=None, at=at(0))
    assert store.create_token("ADA", ("approvals:read",))[1].member_login == "Ada"
    with pytest.raises(ConfigError, match=r"no member 'bob'.*Ada"):
        store.create_token("bob", ("approvals:read",))


def test_token_commands_create_list_and_revoke(store: Store, clean_store_url: str) -> None:
    runner = CliRunner()
    created = runner.invoke(
        main,
        [
            *(
                "token",
                "create",
                "--member",
                "ada",
                "--scope",
                "approvals:read",
                "--scope",
                "feature_flag:read",
            ),
            *("--environment", "2", "--store", clean_store_url),
        ],
    )
    assert created.exit_code == 0, created.output
    secret = created.stdout.strip()
    assert secret.count("\n") == 0
    assert secret.startswith("rcn_")
    assert "shown only once" in created.stderr
    record = store.authenticate(secret)
    assert record is not None
    assert record.environment_ids == (2,)

    listed = runner.invoke(main, ["token", "list", "--store", clean_store_url])
    assert listed.exit_code == 0
    assert record.prefix in listed.stdout
    assert "approvals:read,feature_flag:read" in listed.stdout
    assert secret not in listed.stdout

    revoked = runner.invoke(main, ["token", "revoke", record.prefix, "--store", clean_store_url])
    assert revoked.exit_code == 0
    assert store.authenticate(secret) is None
    assert "revoked" in runner.invoke(main, ["token", "list", "--store", clean_store_url]).stdout


def test_token_create_reads_the_store_from_the_environment(store: Store, clean_store_url: str) -> None:
    result = CliRunner().invoke(
        main,
        ["token", "create", "--member", "ada", "--scope", "activity_log:read"],
        env={"RECONCILER_STORE": clean_store_url},
    )
    assert result.exit_code == 0
    assert store.authenticate(result.stdout.strip()) is not None


def test_token_commands_reject_bad_input_clearly(clean_store_url: str) -> None:
    runner = CliRunner()
    bad_scope = runner.invoke(
        main, ["token", "create", "--member", "a", "--scope", "write", "--store", clean_store_url]
    )
    assert bad_scope.exit_code == 2
    assert "approvals:read" in bad_scope.output
    missing = runner.invoke(main, ["token", "revoke", "rcn_missing", "--store", clean_store_url])
    assert missing.exit_code == 2
    assert "no token 'rcn_missing'" in missing.stderr


def test_token_list_has_headers_labels_and_environment_keys(fresh_store: tuple[Store, Tokens]) -> None:
    store, _tokens = fresh_store
    url = store.engine.url.render_as_string(hide_password=False)
    runner = CliRunner()
    created = runner.invoke(
        main,
        [
            *("token", "create", "--member", "grace", "--scope", "approvals:read"),
            *(
                "--environment",
                "staging",
                "--environment",
                "2",
                "--label",
                "release dashboard",
                "--store",
                url,
            ),
        ],
    )
    assert created.exit_code == 0, created.output
    record = store.authenticate(created.stdout.strip())
    assert record is not None and record.environment_ids == (2,)
    listed = runner.invoke(main, ["token", "list", "--store", url])
    assert listed.exit_code == 0, listed.output
    lines = [line.split("\t") for line in listed.stdout.splitlines()]
    assert lines[0] == ["ID", "PREFIX", "MEMBER", "SCOPES", "ENVIRONMENTS", "LABEL", "CREATED", "STATE"]
    mine = next(line for line in lines if line[0] == str(record.id))
    assert mine[1:6] == [f"{record.prefix}…", "grace", "approvals:read", "staging (2)", "release dashboard"]
    assert mine[7] == "active"
    as_json = json.loads(runner.invoke(main, ["token", "list", "--format", "json", "--store", url]).stdout)
    assert as_json[-1]["environments"] == [{"id": 2, "key": "staging"}]
    assert as_json[-1]["label"] == "release dashboard"
    assert created.stdout.strip() not in listed.stdout + json.dumps(as_json)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("7", "no environment 7 in reconciler.yaml as applied: pick from 1 (production), 2 (staging)"),
        ("prod", "no environment 'prod' in the store: use one of production, staging"),
        ("0", "an environment id is between 1 and 2147483647"),
        ("99999999999999999999", "an environment id is between 1 and 2147483647"),
        ("-1", "no environment '-1' in the store"),
    ],
)
def test_token_create_refuses_an_unknown_environment(
    fresh_store: tuple[Store, Tokens], value: str, message: str
) -> None:
    store, _tokens = fresh_store
    before = store.list_tokens()
    result = CliRunner().invoke(
        main,
        [
            *("token", "create", "--member", "ada", "--scope", "approvals:read", "--environment", "1"),
            *("--environment", value, "--store", store.engine.url.render_as_string(hide_password=False)),
        ],
    )
    assert result.exit_code == 2
    assert message in result.stderr
    assert result.stdout == ""
    assert store.list_tokens() == before


def test_before_the_first_pass_an_environment_id_is_taken_as_given(store: Store) -> None:
    """Nothing to check against yet (as with members): a restriction only narrows what it reads."""
    _secret, record = store.create_token("ada", ("approvals:read",), environment_ids=(7,))
    assert record.environment_ids == (7,)
    with pytest.raises(ConfigError, match="no environment 7"):
        with store.transaction() as tx:
            tx.replace_environments([EnvironmentRecord(1, "production", "Production", "phc_x")])
        store.create_token("ada", ("approvals:read",), environment_ids=(7,))
