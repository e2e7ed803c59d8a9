"""Telling people what happened: messages to a chat webhook (Slack-compatible).

The events come from the audit trail (`feed.take`, exactly once across processes), become
words in `events.py` (which `reconciler reconcile` also prints), and `webhook.WebhookSender`
delivers them in the background with retries. `Notifier` puts the three together for the
service loop and the `reconcile` command; where the URL comes from is `webhook_url`.
"""

from __future__ import annotations

from reconciler.notify.events import REFUSED, Notice, notice
from reconciler.notify.notifier import Notifier, webhook_url
from reconciler.notify.webhook import SenderSettings, WebhookSender

__all__ = ["REFUSED", "Notice", "Notifier", "SenderSettings", "WebhookSender", "notice", "webhook_url"]
