"""How an operator configures the read API: anonymous access, webhook secret, public URL.

`create_app` takes an `ApiSettings`, built from command options and the environment
(`ApiSettings.from_env`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

WEBHOOK_SECRET_ENV = "RECONCILER_WEBHOOK_SECRET"  # noqa: S105 - the variable's name, not a secret
PUBLIC_URL_ENV = "RECONCILER_PUBLIC_URL"
SESSION_SECRET_ENV = "RECONCILER_SESSION_SECRET"  # noqa: S105 - the variable's name, not a secret


@dataclass(frozen=True)
class ApiSettings:
    """Options of the read API.

    `allow_anonymous` serves every read without a token, as if a token with every scope and
    no environment restriction had been presented: unsafe anywhere but a closed network.
    `webhook_secret` verifies `POST /webhooks/github`; without it every delivery is refused.
    `repository` (`owner/name`) is named in the 405 answer to write methods.
    `public_base_url` (e.g. `https://flags.example.com`) is the origin of absolute `next` and
    `previous` links behind a proxy; without it they use the request's own host.
    `token_cache_seconds`: how long a valid token is trusted without asking the store again,
    hence the longest a revoked token keeps working (0: ask on every request).
    `version_check_seconds`: how long the store version is trusted, hence the longest a
    commit by the reconciler takes to show in answers (0: read it on every request).
    `session_secret` signs the dashboard's session cookies; processes that serve one address
    (replicas, workers) need the same one. Without it each process makes a random key, and
    its sessions end when it restarts.
    """

    allow_anonymous: bool = False
    webhook_secret: str | None = None
    repository: str | None = None
    public_base_url: str | None = None
    token_cache_seconds: float = 1.0
    version_check_seconds: float = 0.2
    session_secret: str | None = None

    @classmethod
    def from_env(
        cls,
        *,
        allow_anonymous: bool = False,
        repository: str | None = None,
        public_base_url: str | None = None,
    ) -> ApiSettings:
        """Settings with the webhook secret (and, unless given, the public URL) from the environment."""
        return cls(
            allow_anonymous=allow_anonymous,
            webhook_secret=os.environ.get(WEBHOOK_SECRET_ENV) or None,
            repository=repository,
            public_base_url=public_base_url or os.environ.get(PUBLIC_URL_ENV) or None,
            session_secret=os.environ.get(SESSION_SECRET_ENV) or None,
        )

    @property
    def write_hint(self) -> str:
        """Where writes go instead, for the 405 answer."""
        where = f"the policy repository {self.repository}" if self.repository else "the policy repository"
        return (
            f"this API is read-only: changes are made in Git. Open a pull request against {where} "
            "that adds or edits a file under changes/ (or policies/, members.yaml); it applies once "
            "approved and merged"
        )
