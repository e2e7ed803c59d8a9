"""Where notifications go: the variable reconciler.yaml names (never the URL itself), and what
happens when it is missing or holds no URL: a warning that names the variable, not the value."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from pydantic import ValidationError

from reconciler.decision.regime import PROJECT_KEY
from reconciler.errors import ConfigError
from reconciler.model.documents import Project
from reconciler.notify import Notifier, SenderSettings, WebhookSender, webhook_url
from reconciler.store import Position, Store
from tests.support import policyrepo as pr
from tests.support.people import T0
from tests.support.receiver import receiver

FAST = SenderSettings(attempts=2, backoff=0.01, backoff_cap=0.02, timeout=1.0)


def project(**notifications: Any) -> Project:
    document = pr.project()
    if notifications:
        document["spec"]["notifications"] = notifications
    return Project.model_validate(document)


def test_the_default_variable_and_the_one_reconciler_yaml_names() -> None:
    env = {
        "RECONCILER_NOTIFY_WEBHOOK_URL": "https://hooks.example/a",
        "RECONCILER_NOTIFY_FLAGS": "https://hooks.example/b",
    }
    assert webhook_url(None, env) == ("RECONCILER_NOTIFY_WEBHOOK_URL", "https://hooks.example/a")
    assert webhook_url(project(), env)[1] == "https://hooks.example/a"
    assert (
        webhook_url(project(webhook_url_env="RECONCILER_NOTIFY_FLAGS"), env)[1] == "https://hooks.example/b"
    )
    assert webhook_url(project(), {}) == ("RECONCILER_NOTIFY_WEBHOOK_URL", None)


@pytest.mark.parametrize(
    "name",
    [
        "GITHUB_TOKEN",
        "DATABASE_URL",
        "RECONCILER_STORE",
        "RECONCILER_NOTIFY_",
        "reconciler_notify_x",
        "RECONCILER_NOTIFY_$(id)",
    ],
)
def test_reconciler_yaml_can_only_name_a_variable_meant_for_notifications(name: str) -> None:
    with pytest.raises(ValidationError, match="RECONCILER_NOTIFY_"):
        project(webhook_url_env=name)


@pytest.mark.parametrize(
    "extra", [{"webhook_url": "https://hooks.slack.com/services/T/B/secret"}, {"url": "x"}]
)
def test_a_url_written_into_reconciler_yaml_is_refused(extra: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        project(**extra)


def test_a_variable_that_holds_no_url_is_named_and_its_value_never_shown() -> None:
    with pytest.raises(ConfigError) as caught:
        webhook_url(None, {"RECONCILER_NOTIFY_WEBHOOK_URL": "hooks.slack.com/services/T/B/s3cr3t"})
    assert "RECONCILER_NOTIFY_WEBHOOK_URL" in str(caught.value) and "s3cr3t" not in str(caught.value)


def in_force(store: Store, doc: Project) -> None:
    with store.transaction() as tx:
        tx.set_position(Position(details={PROJECT_KEY: doc.model_dump(mode="json")}))


def test_a_named_variable_that_is_not_set_is_warned_about_once(
    sqlite_store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    in_force(sqlite_store, project(webhook_url_env="RECONCILER_NOTIFY_FLAGS"))
    told = Notifier(
        sqlite_store, WebhookSender(FAST), env={"RECONCILER_NOTIFY_WEBHOOK_URL": "https://h.example/x"}
    )
    with caplog.at_level(logging.WARNING):
        assert not told.publish()
        assert not told.publish()
    told.close()
    assert caplog.text.count("names RECONCILER_NOTIFY_FLAGS for notifications, but it is not set") == 1


def test_with_no_url_nothing_is_read_or_written(sqlite_store: Store) -> None:
    told = Notifier(sqlite_store, WebhookSender(FAST), env={})
    told.prepare()
    assert not told.publish()
    told.close()
    assert sqlite_store.counter("notifications") == 0


def test_the_message_goes_to_the_variable_reconciler_yaml_names(sqlite_store: Store) -> None:
    in_force(sqlite_store, project(webhook_url_env="RECONCILER_NOTIFY_FLAGS"))
    with receiver() as named, receiver() as default:
        env = {"RECONCILER_NOTIFY_FLAGS": named.url, "RECONCILER_NOTIFY_WEBHOOK_URL": default.url}
        told = Notifier(sqlite_store, WebhookSender(FAST), env=env)
        told.prepare()
        with sqlite_store.transaction() as tx:
            tx.append_audit(
                "rules.change_rejected",
                object_type="rules",
                object_id="approval_policy.change",
                at=T0,
                commit="a" * 40,
                data={"files": ["policies/x.yaml"], "reason": "1 of 2 approvals"},
            )
        assert told.publish()
        told.close(10)
        assert default.texts() == []
        assert named.texts() == [
            "reconciler (acme)\n"
            "*rule change not in force (the previous rules stay)*: `policies/x.yaml`: 1 of 2 approvals"
        ]
