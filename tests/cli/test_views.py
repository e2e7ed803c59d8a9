"""`reconciler status`, `changes list|show` and `flags list|show|history` over the seeded store.

Through the real command line (click's runner) against the store the API tests read, on SQLite
and PostgreSQL: plain lines when piped, tables when asked, JSON in the API's own shapes, clear
errors for what the store does not hold, and values from Git never reaching the terminal as
markup or escape sequences.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from click.testing import CliRunner, Result

from reconciler.cli import main
from reconciler.store import Store, VoteRecord
from tests.support.apiclient import Client
from tests.support.apiseed import APPLIED, FAILED, PENDING, REJECTED, STAGING_CR, Tokens, at

ESC = "\x1b"


def url_of(store: Store) -> str:
    return store.engine.url.render_as_string(hide_password=False)


def run(store: Store, *args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, [*args, "--store", url_of(store)], env=env)


def ok(store: Store, *args: str, env: dict[str, str] | None = None) -> str:
    result = run(store, *args, env=env)
    assert result.exit_code == 0, result.output
    return result.stdout


def rows(text: str) -> list[list[str]]:
    """The tab-separated rows of `text` output, header first."""
    return [line.split("\t") for line in text.splitlines() if "\t" in line]


# --- changes list ------------------------------------------------------------------------------


def test_changes_list_is_tab_separated_with_a_header_newest_first(seeded_store: Store) -> None:
    table = rows(ok(seeded_store, "changes", "list"))
    assert table[0] == ["NAME", "STATE", "ENVIRONMENT", "FLAG", "ACTION", "REQUESTER", "PR", "UPDATED", "ID"]
    names = [r[0] for r in table[1:]]
    assert names == [STAGING_CR.name, REJECTED.name, FAILED.name, PENDING.name, APPLIED.name]
    applied = table[-1]
    assert applied[1:7] == ["applied", "production", "checkout", "update", "ada", "#12"]
    assert applied[8] == APPLIED.id


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--state", "failed", "--state", "rejected"], {FAILED.name, REJECTED.name}),
        (["--environment", "staging"], {STAGING_CR.name}),
        (["--flag", "search"], {PENDING.name}),
        (["--requester", "linus"], {PENDING.name, REJECTED.name}),
        (["--requester", "LINUS", "--state", "pending"], set()),  # logins as members.yaml spells them
        (["--environment", "production", "--flag", "checkout", "--state", "applied"], {APPLIED.name}),
    ],
)
def test_changes_list_filters(seeded_store: Store, options: list[str], expected: set[str]) -> None:
    assert {r[0] for r in rows(ok(seeded_store, "changes", "list", *options))[1:]} == expected


def test_changes_list_pages_and_says_so_on_stderr(seeded_store: Store) -> None:
    result = run(seeded_store, "changes", "list", "--limit", "2", "--offset", "1")
    assert result.exit_code == 0
    assert [r[0] for r in rows(result.stdout)[1:]] == [REJECTED.name, FAILED.name]
    assert "2-3 of 5; --offset 3 for more" in result.stderr
    assert "offset" not in result.stdout


def test_changes_list_refuses_an_unknown_environment_naming_the_known_ones(seeded_store: Store) -> None:
    result = run(seeded_store, "changes", "list", "--environment", "prod")
    assert result.exit_code == 2
    assert "no environment 'prod' in the store: use one of production, staging" in result.stderr


@pytest.mark.parametrize(
    "options", [["--state", "done"], ["--limit", "0"], ["--limit", "1001"], ["--offset", "-1"]]
)
def test_changes_list_refuses_bad_options(seeded_store: Store, options: list[str]) -> None:
    result = run(seeded_store, "changes", "list", *options)
    assert result.exit_code == 2
    assert "Invalid value" in result.stderr


def test_changes_json_is_the_apis_change_request_object(
    seeded_store: Store, client: Client, tokens: Tokens
) -> None:
    body = json.loads(ok(seeded_store, "changes", "list", "--format", "json", "--state", "applied"))
    api = client.get(f"/api/environments/1/change_requests/{APPLIED.id}/").json()
    assert body["count"] == 1
    (mine,) = body["results"]
    caller_specific = {"is_requester", "user_decision"}  # the API answers them for its caller
    assert {k: v for k, v in mine.items() if k not in caller_specific} == {
        k: v for k, v in api.items() if k not in caller_specific
    }


# --- changes show ------------------------------------------------------------------------------


@pytest.mark.parametrize("ident", [APPLIED.id, APPLIED.id.upper(), APPLIED.name, APPLIED.file])
def test_changes_show_finds_a_change_request_by_id_name_or_file(seeded_store: Store, ident: str) -> None:
    text = ok(seeded_store, "changes", "show", ident)
    assert f"# change request {APPLIED.name}\nid: {APPLIED.id}\n" in text


def test_changes_show_prints_votes_with_why_and_the_events(seeded_store: Store) -> None:
    text = ok(seeded_store, "changes", "show", APPLIED.name)
    votes = rows(text.split("# votes\n", 1)[1].split("\n\n", 1)[0])
    assert votes == [
        ["REVIEWER", "VOTE", "COUNTS", "WHY NOT", "AT", "COMMENT"],
        ["grace", "approved", "yes", "", "2026-03-01 12:12Z", "ship it"],
        ["ada", "approved", "no", "self-approval", "2026-03-01 12:12Z", ""],
    ]
    assert "pull request: https://github.com/acme/flags/pull/12" in text
    assert "changes: /rollout_percentage: 10 -> 50" in text
    events = text.split("# events\n", 1)[1]
    assert "change_request.applied\tgrace\tcccccccccccc" in events


def test_changes_show_prints_the_apply_error(seeded_store: Store) -> None:
    text = ok(seeded_store, "changes", "show", FAILED.name)
    assert "apply error: Flag version mismatch: expected 1, got 2" in text


def test_changes_show_json_adds_the_events_to_the_apis_object(seeded_store: Store) -> None:
    body = json.loads(ok(seeded_store, "changes", "show", APPLIED.id, "--format", "json"))
    assert body["id"] == APPLIED.id
    assert [a["login"] for a in body["approvals"]] == ["grace", "ada"]
    assert body["approvals"][1]["ignored_reason"] == "self-approval"
    assert [e["verb"] for e in body["events"]] == ["change_request.applied"]


@pytest.mark.parametrize(
    "ident", ["nope", "00000000-0000-4000-8000-000000000000", "../../etc/passwd", "x" * 5000]
)
def test_changes_show_says_what_to_type_for_an_unknown_change_request(
    seeded_store: Store, ident: str
) -> None:
    result = run(seeded_store, "changes", "show", ident)
    assert result.exit_code == 2
    assert "no change request with the id, name or file" in result.stderr
    assert "`reconciler changes list` shows them" in result.stderr


def test_changes_show_lists_the_ids_when_a_name_is_ambiguous(fresh_store: tuple[Store, Tokens]) -> None:
    store, _tokens = fresh_store
    twin = replace(PENDING, id="0f0f0f0f-0000-4000-8000-000000000001", file="changes/again.yaml")
    with store.transaction() as tx:
        tx.upsert_change_request(twin)
    result = run(store, "changes", "show", PENDING.name)
    assert result.exit_code == 2
    assert f"2 change requests are named {PENDING.name!r}: give the id of one" in result.stderr
    assert PENDING.id in result.stderr and twin.id in result.stderr
    assert f"# change request {PENDING.name}" in ok(store, "changes", "show", twin.id)


# --- what Git wrote never drives the terminal ----------------------------------------------------

HOSTILE = "[bold red]boom[/] \x1b]0;pwned\x07\x1b[2J\r\nnext line\ttab"


@pytest.fixture
def hostile_store(fresh_store: tuple[Store, Tokens]) -> Store:
    store, _tokens = fresh_store
    vote = VoteRecord(login="grace", decision="rejected", reason=HOSTILE, at=at(41), counted=True)
    with store.transaction() as tx:
        tx.upsert_change_request(replace(FAILED, apply_error=HOSTILE, description=HOSTILE, votes=(vote,)))
    return store


@pytest.mark.parametrize("fmt", ["text", "table"])
def test_values_from_git_are_shown_escaped_never_as_markup_or_escapes(hostile_store: Store, fmt: str) -> None:
    out = ok(hostile_store, "changes", "show", FAILED.name, "--format", fmt, env={"COLUMNS": "400"})
    assert ESC not in out and "\r" not in out and "\x07" not in out
    assert "[bold red]boom[/]" in out
    assert "\\x1b]0;pwned\\x07\\x1b[2J\\x0d\\x0anext line\\x09tab" in out


def test_json_keeps_the_value_exactly(hostile_store: Store) -> None:
    body = json.loads(ok(hostile_store, "changes", "show", FAILED.name, "--format", "json"))
    assert body["apply_error"] == HOSTILE


def test_tables_are_coloured_only_when_wanted(seeded_store: Store) -> None:
    coloured = ok(
        seeded_store, "changes", "list", "--format", "table", env={"FORCE_COLOR": "1", "COLUMNS": "200"}
    )
    assert f"{ESC}[" in coloured
    plain = ok(
        seeded_store,
        "changes",
        "list",
        "--format",
        "table",
        env={"FORCE_COLOR": "1", "NO_COLOR": "1", "COLUMNS": "200"},
    )
    assert ESC not in plain
    assert "ramp-checkout" in plain and "─" in plain  # still a table, without escapes


def test_auto_is_plain_text_when_not_a_terminal(seeded_store: Store) -> None:
    assert ok(seeded_store, "changes", "list") == ok(seeded_store, "changes", "list", "--format", "text")


# --- flags ---------------------------------------------------------------------------------------


def test_flags_list_every_environment_and_deleted_ones_on_request(seeded_store: Store) -> None:
    table = rows(ok(seeded_store, "flags", "list"))
    assert table[0] == ["ENVIRONMENT", "KEY", "NAME", "STATE", "ROLLOUT", "VERSION", "UPDATED", "COMMIT"]
    assert [(r[0], r[1], r[3], r[4], r[5]) for r in table[1:]] == [
        ("production", "checkout", "on", "50%", "2"),
        ("production", "search", "off", "100%", "1"),
        ("staging", "checkout", "on", "100%", "1"),
    ]
    deleted = rows(ok(seeded_store, "flags", "list", "--environment", "production", "--include-deleted"))
    assert [(r[1], r[3]) for r in deleted[1:]] == [
        ("checkout", "on"),
        ("search", "off"),
        ("retired", "deleted"),
    ]


def test_flags_list_json_is_the_apis_flag_object(seeded_store: Store, client: Client) -> None:
    body = json.loads(ok(seeded_store, "flags", "list", "--environment", "production", "--format", "json"))
    api = client.get("/api/projects/1/feature_flags/1/").json()
    assert {k: v for k, v in body[0].items() if k != "environment"} == api
    assert body[0]["environment"] == "production"


def test_flags_show_prints_the_flag_as_served(seeded_store: Store) -> None:
    text = ok(seeded_store, "flags", "show", "checkout", "--environment", "production")
    assert "state: on\nversion: 2\n" in text
    assert f"change request: {APPLIED.name} ({APPLIED.id})" in text
    assert rows(text.split("# release conditions\n", 1)[1]) == [
        ["#", "CONDITIONS", "ROLLOUT", "VARIANT"],
        ["0", "everyone", "50%", ""],
    ]


def test_flags_show_needs_the_environment_when_there_are_several(seeded_store: Store) -> None:
    result = run(seeded_store, "flags", "show", "checkout")
    assert result.exit_code == 2
    assert "say which environment with --environment: use one of production, staging" in result.stderr


@pytest.mark.parametrize("command", ["show", "history"])
def test_flags_unknown_flag_says_how_to_list_them(seeded_store: Store, command: str) -> None:
    result = run(seeded_store, "flags", command, "nope", "--environment", "staging")
    assert result.exit_code == 2
    assert (
        "no flag 'nope' in environment 'staging': `reconciler flags list --environment staging`"
        in result.stderr
    )


def test_flags_history_names_the_change_request_approvals_and_the_difference(seeded_store: Store) -> None:
    table = rows(ok(seeded_store, "flags", "history", "checkout", "--environment", "production"))
    assert table == [
        ["VERSION", "WHEN", "CHANGE REQUEST", "COMMIT", "APPROVED BY", "WHAT CHANGED"],
        [
            "2",
            "2026-03-01 12:13Z",
            APPLIED.name,
            "cccccccccccc",
            "grace",
            "/filters/groups/0/rollout_percentage: 10.0 -> 50.0",
        ],
        ["1", "2026-03-01 12:01Z", "", "", "", "created"],
    ]


def test_flags_history_json_has_every_version_with_its_differences(seeded_store: Store) -> None:
    body: list[dict[str, Any]] = json.loads(
        ok(seeded_store, "flags", "history", "checkout", "--environment", "production", "--format", "json")
    )
    assert [v["version"] for v in body] == [2, 1]
    assert body[0]["change_request"] == {
        "id": APPLIED.id,
        "name": APPLIED.name,
        "file": APPLIED.file,
        "approved_by": ["grace"],
    }
    assert body[0]["changes"] == [
        {"pointer": "/filters/groups/0/rollout_percentage", "before": 10.0, "after": 50.0}
    ]
    assert body[1]["change_request"] is None


# --- status --------------------------------------------------------------------------------------


def test_status_says_what_is_wrong_and_what_to_do(seeded_store: Store) -> None:
    text = ok(seeded_store, "status")
    assert "sync: OutOfSync\n" in text
    assert "last error: fetch failed: timeout (2026-03-01 13:01Z)" in text
    assert "what to do: the last pass failed and is retried on the next poll" in text
    counts = dict(r for r in rows(text.split("# change requests\n", 1)[1].split("\n\n", 1)[0])[1:])
    assert counts == {
        "pending": "1",
        "approved": "1",
        "applied": "1",
        "rejected": "1",
        "expired": "0",
        "failed": "1",
    }


def test_status_json_uses_the_apis_field_names(seeded_store: Store, client: Client) -> None:
    body = json.loads(ok(seeded_store, "status", "--format", "json"))
    api = client.get("/api/reconciler/status").json()
    assert {k: v for k, v in body.items() if k in api} == {k: v for k, v in api.items() if k != "service"}
    assert body["change_requests"]["failed"] == 1
    assert body["environments"] == [
        {"key": "production", "id": 1, "flags": 2},
        {"key": "staging", "id": 2, "flags": 1},
    ]


def test_status_of_an_empty_store_says_to_run_a_pass(store: Store) -> None:
    text = ok(store, "status")
    assert "sync: Unknown" in text
    assert "what to do: no pass has run yet" in text


def test_flags_history_shows_the_newest_versions_and_says_how_many_are_left(seeded_store: Store) -> None:
    result = run(seeded_store, "flags", "history", "checkout", "--environment", "production", "--limit", "1")
    assert result.exit_code == 0, result.output
    table = rows(result.stdout)
    assert [r[0] for r in table[1:]] == ["2"]
    assert table[1][5] == "/filters/groups/0/rollout_percentage: 10.0 -> 50.0"  # still against version 1
    assert "the newest 1 of 2 versions; --limit shows more" in result.stderr


@pytest.mark.parametrize(
    "options",
    [
        ["--flag", "' OR '1'='1"],
        ["--requester", "ada' --"],
        ["--flag", "%"],
        ["--requester", "_"],
        ["--flag", "x" * 100_000],
    ],
)
def test_filters_are_values_never_patterns_or_sql(seeded_store: Store, options: list[str]) -> None:
    result = run(seeded_store, "changes", "list", *options)
    assert result.exit_code == 0, result.output
    assert rows(result.stdout)[1:] == []
    assert "0 of 0" not in result.stderr  # nothing to page through: no note
