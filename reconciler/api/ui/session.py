"""Dashboard sessions, form-post protection, safe `next` targets and the pages' security headers.

Pure functions over bytes and strings, no web framework: `routes.py` calls them.

A session cookie carries the *hash* of the token the person signed in with (never the token),
the time it was issued, and an HMAC over both with the server's session key. The hash is what
the store keeps, so every request looks the token up again as the API does: a revoked token
ends its sessions within the API's token cache time. A stolen cookie is worth less than the
token: it is refused by the API (which hashes what it is sent), and it stops working after
`SESSION_SECONDS` or when the server's key changes.

Form posts (sign-in, sign-out) carry a field derived from a random per-browser cookie by the
same key (a signed double submit); the cookies are SameSite=Strict and posts whose `Origin`
or `Sec-Fetch-Site` names another site are refused before that.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

SESSION_COOKIE = "reconciler_session"
CSRF_COOKIE = "reconciler_csrf"
COOKIE_PATH = "/ui"
SESSION_SECONDS = 12 * 3600
_VERSION = "v1"
_DIGEST = re.compile(r"[0-9a-f]{64}")
_NONCE = re.compile(r"[A-Za-z0-9_-]{16,64}")

# No script runs on any page; styles come from our own file; nothing may frame a page.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _mac(key: bytes, message: str) -> str:
    digest = hmac.new(key, message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


@dataclass(frozen=True)
class SessionKeys:
    """The server's session key: from the operator (several processes share it), or random
    per process (sessions then end when it restarts)."""

    key: bytes

    @classmethod
    def create(cls, secret: str | None) -> SessionKeys:
        if secret:
            return cls(hashlib.sha256(b"reconciler-dashboard-session\0" + secret.encode()).digest())
        return cls(secrets.token_bytes(32))

    def issue(self, token_digest: str, now: float | None = None) -> str:
        """A session cookie value for the token with this hash."""
        issued = int(time.time() if now is None else now)
        body = f"{_VERSION}.{issued}.{token_digest}"
        return f"{body}.{_mac(self.key, 'session.' + body)}"

    def token_digest(self, cookie: str | None, now: float | None = None) -> str | None:
        """The token hash a session cookie carries, if its signature holds and it is not too old."""
        if not cookie or len(cookie) > 200:
            return None
        parts = cookie.split(".")
        if len(parts) != 4 or parts[0] != _VERSION or not parts[1].isdigit():
            return None
        body = ".".join(parts[:3])
        if not hmac.compare_digest(parts[3], _mac(self.key, "session." + body)):
            return None
        age = (time.time() if now is None else now) - int(parts[1])
        if not (-60 <= age <= SESSION_SECONDS) or not _DIGEST.fullmatch(parts[2]):
            return None
        return parts[2]

    def form_token(self, nonce: str) -> str:
        """The hidden field a form carries for the browser holding `nonce` in its CSRF cookie."""
        return _mac(self.key, "csrf." + nonce)

    def form_allowed(self, nonce: str | None, field: str | None) -> bool:
        """Whether a posted form carries the field that matches the browser's CSRF cookie."""
        if not nonce or not field or not valid_nonce(nonce):
            return False
        return hmac.compare_digest(field, self.form_token(nonce))


def new_nonce() -> str:
    return secrets.token_urlsafe(24)


def valid_nonce(nonce: str | None) -> bool:
    return nonce is not None and _NONCE.fullmatch(nonce) is not None


def same_site_post(origin: str | None, fetch_site: str | None, host: str | None, scheme: str) -> bool:
    """Whether a post's own headers allow it: browsers send `Sec-Fetch-Site` and `Origin`, and
    neither may name another site (a missing header is left to the CSRF field)."""
    if fetch_site is not None and fetch_site not in {"same-origin", "none"}:
        return False
    if origin is None:
        return True
    return origin == f"{scheme}://{host}"


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a dashboard path on this server, else the overview.

    Refuses anything that a browser could take to another origin (`//host`, `/\\host`,
    `https:…`), control characters, and `..` segments."""
    fallback = "/ui/"
    if not target or len(target) > 2000 or not target.startswith("/ui/"):
        return fallback
    if any(ord(ch) < 0x21 or ch in "\\\x7f" for ch in target):
        return fallback
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or ".." in parts.path.split("/"):
        return fallback
    return target
