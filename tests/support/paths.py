"""Where the suite's files are: the checkout, the examples and the copied shared fixtures."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "policies"
# The real GitHub payloads and published API examples, copied from ../shared/fixtures with
# their licences so the suite runs from any checkout.
FIXTURES = ROOT / "tests" / "fixtures" / "shared"
REPOS = ROOT / "tests" / "fixtures" / "repos"
# Fragments of PostHog's published API schema (see its README for the sources).
POSTHOG_SCHEMA = ROOT / "tests" / "fixtures" / "posthog-schema" / "schema.json"
