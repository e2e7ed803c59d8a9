"""The read-only HTTP API: PostHog-compatible approvals, flags, members and audit events,
LaunchDarkly and /v1 approval views, SDK local evaluation, and the operator endpoints.

`create_app(store, settings=..., on_webhook=..., status_provider=...)` builds the FastAPI
application.
"""

from __future__ import annotations

from reconciler.api.app import create_app
from reconciler.api.settings import ApiSettings

__all__ = ["ApiSettings", "create_app"]
