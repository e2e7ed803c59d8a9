"""The paths of the LaunchDarkly and /v1 views, declared once: their routes serve GET on
them and the read-only guard refuses every write method there."""

from __future__ import annotations

LAUNCHDARKLY_APPROVALS = (
    "/api/v2/projects/{projectKey}/flags/{flagKey}/environments/{envKey}/approval-requests"
)
V1_APPROVALS = "/v1/approvals"
