"""GitOps reconciler for feature-flag changes.

Approval policies and flag change requests live as YAML in a Git repository; pull-request
reviews are the approvals; the reconciler applies each merged, approved change to the flag
store exactly once and serves a read-only API over the result.
"""

from __future__ import annotations

__version__ = "0.1.0"
