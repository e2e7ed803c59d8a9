"""What a vote does for a policy, in the words users read: why it is ignored, or how it counts."""

from __future__ import annotations

# The one reason a vote is ignored, as users read it.
NOT_ELIGIBLE = "not an eligible approver"
SELF_APPROVAL = "self-approval not allowed"
STALE = "stale: file changed after review"
UNKNOWN_LOGIN = "unknown login"
DISMISSED = "dismissed"
# What a vote that is not ignored does for a policy.
COUNTED = "counted"
REJECTION = "rejection"
