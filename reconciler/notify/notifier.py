"""`Notifier`: after a pass or a pull-request sync, tell the webhook what happened since the last time.

`publish()` is called by whoever just wrote to the store (the service loop after each pass and
each sync of open pull requests; `reconciler reconcile` after its pass). It reads where to send
from the rules in force and the process environment (`webhook_url`), takes the events not told
yet (`feed.take`) and queues one message; delivery happens on the sender's thread. Nothing
here raises into the caller: a notification problem is logged, and the pass goes on.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from reconciler.decision.regime import stored_project
from reconciler.errors import ConfigError
from reconciler.model.documents import NOTIFY_URL_ENV, Project
from reconciler.notify import feed
from reconciler.notify.events import slack_text
from reconciler.notify.webhook import WebhookSender, check_url
from reconciler.store import Store

log = logging.getLogger("reconciler.notify")


def webhook_url(project: Project | None, env: Mapping[str, str]) -> tuple[str, str | None]:
    """(the variable that names the URL, the URL or None): the variable is the one
    `notifications.webhook_url_env` of reconciler.yaml names, else RECONCILER_NOTIFY_WEBHOOK_URL.

    ConfigError (never quoting the value) when the variable holds something that is no URL.
    """
    name = project.spec.notifications.webhook_url_env if project is not None else NOTIFY_URL_ENV
    value = env.get(name, "").strip()
    if not value:
        return name, None
    try:
        return name, check_url(value)
    except ConfigError as err:
        raise ConfigError(f"{name}: {err}") from None


class Notifier:
    """Tells `sender` about the store's new audit events, once each."""

    def __init__(self, store: Store, sender: WebhookSender, env: Mapping[str, str] | None = None):
        self.store = store
        self.sender = sender
        self._env = os.environ if env is None else env
        self._problem: str | None = None

    def prepare(self) -> None:
        """When a webhook is configured, begin at the audit trail's head unless begun before
        (so a first `reconcile` tells what its own pass does, and nothing of the past)."""
        try:
            if webhook_url(stored_project(self.store.position()), self._env)[1] is not None:
                feed.start(self.store)
        except Exception as err:  # publish() says what is wrong, once
            log.debug("notifications not prepared: %s", type(err).__name__)

    def publish(self) -> bool:
        """Queue one message about what happened since the last one; True when one was queued."""
        try:
            return self._publish()
        except Exception as err:  # telling people must never fail what they are told about
            log.warning("notifications not sent: %s", type(err).__name__ if _may_quote_url(err) else err)
            return False

    def _publish(self) -> bool:
        project = stored_project(self.store.position())
        try:
            name, url = webhook_url(project, self._env)
        except ConfigError as err:
            self._once(str(err))
            return False
        if url is None:
            if project is not None and project.spec.notifications.webhook_url_env != NOTIFY_URL_ENV:
                self._once(
                    f"reconciler.yaml names {name} for notifications, but it is not set: none are sent"
                )
            return False
        self._problem = None
        batch = feed.take(self.store)
        if not batch.notices and not batch.more:
            return False
        text = slack_text(batch.notices, more=batch.more, project=project.metadata.name if project else "")
        return self.sender.send(url, text)

    def _once(self, problem: str) -> None:
        if problem != self._problem:
            log.warning("%s", problem)
            self._problem = problem

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is queued for up to `timeout` seconds, then stop the sender."""
        self.sender.close(timeout)


def _may_quote_url(err: Exception) -> bool:
    # Store errors mask passwords themselves; anything from the HTTP side is named by type only.
    return type(err).__module__.startswith("httpx")
