"""Links people follow from GitHub to the dashboard: its address checked once, and the page of a
pull request.

`dashboard_url` (in `reconciler.yaml`, or `--dashboard-url` / `RECONCILER_DASHBOARD_URL`) ends up
as the `target_url` of a commit status that every reviewer clicks, so only a plain `http(s)`
address is taken: no credentials, query or fragment, nothing a browser would run.
"""

from __future__ import annotations

from urllib.parse import urlsplit

MAX_URL_LENGTH = 2000
# For editors (the schema); `check_dashboard_url` has the last word and says what is wrong.
DASHBOARD_URL_PATTERN = r"^https?://[^\s/?#@\\\x00-\x1f\x7f]+(/[^\s?#@\\\x00-\x1f\x7f]*)?$"
DASHBOARD_URL_ENV = "RECONCILER_DASHBOARD_URL"


def check_dashboard_url(text: str) -> str:
    """`text` as a dashboard address (without a trailing slash), or ValueError saying what is wrong."""
    if len(text) > MAX_URL_LENGTH:
        raise ValueError(f"a dashboard address is at most {MAX_URL_LENGTH} characters")
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F or c == "\\" for c in text):
        raise ValueError("a dashboard address has no spaces, control characters or backslashes")
    parts = urlsplit(text)
    if parts.scheme not in ("https", "http") or not text.startswith(f"{parts.scheme}://"):
        raise ValueError(
            "a dashboard address starts with https:// (or http://), e.g. https://flags.example.com"
        )
    if "@" in parts.netloc:
        raise ValueError(
            "a dashboard address carries no user name or password: it is shown to every reviewer"
        )
    if parts.query or parts.fragment or "?" in text or "#" in text:
        raise ValueError(
            "a dashboard address has no query (?) or fragment (#): "
            "give the address the dashboard is served at"
        )
    if not parts.hostname:
        raise ValueError("a dashboard address names a host, e.g. https://flags.example.com")
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number in range
    except ValueError as err:
        raise ValueError(
            f"a dashboard address has a valid port, not {parts.netloc.rsplit(':', 1)[-1]!r}"
        ) from err
    if "@" in parts.path:
        raise ValueError("a dashboard address has no @ in its path")
    return text.rstrip("/")


def pull_request_page(dashboard_url: str, number: int) -> str:
    """The dashboard's page of pull request `number`: `{dashboard_url}/ui/pulls/{number}`."""
    return f"{dashboard_url.rstrip('/')}/ui/pulls/{number}"
