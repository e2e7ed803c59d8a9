"""Which audit events make a notice, and how a notice reads in a terminal and in Slack."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from reconciler.notify.events import MAX_LINES, MAX_MESSAGE, Notice, notice, slack_line, slack_text
from reconciler.store import AuditRecord
from tests.support.apiseed import APPLIED, FAILED, PENDING, at

SHA = "c" * 40


def event(
    verb: str, data: dict[str, Any], *, commit: str | None = SHA, object_id: str = APPLIED.id
) -> AuditRecord:
    return AuditRecord(1, verb, None, "change_request", object_id, data, commit, at(0), "0" * 64, "1" * 64)


def test_a_landed_change_that_applied_or_failed_makes_a_notice_naming_where_and_why() -> None:
    applied = notice(event("change_request.applied", {"file": APPLIED.file}), APPLIED)
    assert applied == Notice(
        "applied", APPLIED.file, "production/checkout", link=APPLIED.pull_request_url or "", commit=SHA
    )
    failed = notice(event("change_request.failed", {"file": FAILED.file}, object_id=FAILED.id), FAILED)
    assert failed is not None
    assert failed.line() == (
        f"failed: {FAILED.file} (production/checkout) at {SHA[:12]}: Flag version mismatch: expected 1, got 2"
    )


def test_a_rejected_rule_change_names_its_files_and_reason() -> None:
    rules = event("rules.change_rejected", {"files": ["policies/a.yaml", "members.yaml"], "reason": "1 of 2"})
    made = notice(replace(rules, object_type="rules"), None)
    assert made is not None
    assert made.line() == (
        "rule change not in force (the previous rules stay): "
        f"policies/a.yaml, members.yaml at {SHA[:12]}: 1 of 2"
    )


@pytest.mark.parametrize(
    ("verb", "data", "kind"),
    [
        ("change_request.approved", {"file": "f", "pull_request": 14}, "ready"),
        ("change_request.rejected", {"file": "f", "pull_request": 14}, "blocked"),
        ("change_request.expired", {"file": "f", "pull_request": 14}, "blocked"),
        ("change_request.rejected", {"file": "f", "reason": "pull request closed without merging"}, None),
        ("change_request.rejected", {"file": "f", "reason": "no longer in pull request #14"}, None),
        ("change_request.pending", {"file": "f", "pull_request": 14}, None),
        ("change_request.scheduled", {"file": "f"}, None),
    ],
)
def test_an_open_pull_requests_change_tells_when_it_becomes_ready_or_blocked(
    verb: str, data: dict[str, Any], kind: str | None
) -> None:
    made = notice(event(verb, data, commit=None, object_id=PENDING.id), PENDING)
    assert (made.kind if made else None) == kind


def test_slack_text_shows_what_git_wrote_and_never_mentions_or_links_with_it() -> None:
    hostile = Notice(
        "failed",
        "changes/<!channel>.yaml",
        "production/checkout",
        reason="see <https://evil.example|the fix> & <@U123>",
        link="https://github.com/acme/flags/pull/12",
    )
    line = slack_line(hostile)
    assert "<!channel>" not in line and "<@U123>" not in line and "<https://evil" not in line
    assert "&lt;!channel&gt;" in line and "&amp;" in line
    assert line.endswith("<https://github.com/acme/flags/pull/12|pull request>")
    for bad in (
        "javascript:alert(1)",
        "https://x.example/a|b",
        "http://plain.example/",
        "https://a.example/>x",
    ):
        assert "<" + bad not in slack_line(replace(hostile, link=bad))
        assert "|pull request>" not in slack_line(replace(hostile, link=bad))


def test_a_big_batch_is_summed_up_in_one_bounded_message() -> None:
    notices = [Notice("applied", f"changes/{i}.yaml", reason="x" * 5000) for i in range(150)]
    notices += [Notice("failed", "changes/bad.yaml", reason="boom")]
    text = slack_text(notices, more=49, project="acme")
    assert text.startswith("reconciler (acme)\n200 events: 150 applied, 1 failed and 49 more")
    assert text.count("*applied*") == MAX_LINES
    assert len(text) <= MAX_MESSAGE


def test_a_small_batch_lists_every_notice() -> None:
    text = slack_text([Notice("ready", "changes/a.yaml", "staging/x"), Notice("applied", "changes/b.yaml")])
    assert text == "reconciler\n*ready to merge*: `changes/a.yaml` (staging/x)\n*applied*: `changes/b.yaml`"
