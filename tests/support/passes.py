"""What a reconcile pass reports to the loop, for driving the loop without git or GitHub."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Result:
    head: str | None = None
    applied: int = 0
    failed: int = 0
    status: str = "Synced"
