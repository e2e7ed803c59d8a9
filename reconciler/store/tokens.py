"""API token secrets: how they are made, shown and hashed.

A token is `rcn_` followed by 256 random bits (URL-safe base64). Only its SHA-256 is stored:
for a random secret of that size a fast hash is right (no password-style stretching needed),
and it lets `authenticate` find the token by an indexed lookup. The first characters are kept
as a display prefix so `token list` and `token revoke` can name a token without the secret.
"""

from __future__ import annotations

import hashlib
import secrets

from reconciler.errors import ConfigError
from reconciler.model.states import SCOPES

TOKEN_PREFIX = "rcn_"  # noqa: S105 - a marker that says what the string is, not a secret
PREFIX_LENGTH = 12


def new_secret() -> str:
    """A fresh token secret."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


def display_prefix(token: str) -> str:
    """The part of a token shown in listings: enough to tell tokens apart, useless to use."""
    return token[:PREFIX_LENGTH]


def check_scopes(scopes: tuple[str, ...]) -> None:
    """Refuse an empty or unknown scope list, naming the scopes that exist."""
    if not scopes:
        raise ConfigError(f"a token needs at least one scope: {', '.join(SCOPES)}")
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        raise ConfigError(f"unknown scope {', '.join(unknown)}: use one of {', '.join(SCOPES)}")
