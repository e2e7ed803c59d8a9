"""Who is calling and what they may read: bearer tokens, scopes and environment restriction.

Every data handler opens one read snapshot with `Gate.open(...)`, which authenticates the
bearer token in that snapshot, checks the scope, and resolves the environment of the path:
missing or unknown token → 401, missing scope → 403, an environment that does not exist or
that the token may not read → 404 (the same answer, so a token learns nothing about
environments it cannot read).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from reconciler.api.errors import ApiError
from reconciler.api.settings import ApiSettings
from reconciler.store import EnvironmentRecord, Reader, Store, TokenRecord
from reconciler.store.tokens import token_hash

# Documents the scheme in /openapi.json; auto_error=False so a missing header reaches our
# own 401 in the one envelope.
bearer = HTTPBearer(auto_error=False, description="An API token from `reconciler token create`.")

_CHALLENGE = {"WWW-Authenticate": "Bearer"}
TOKEN_CACHE_ENTRIES = 10_000
RENEWAL_SECONDS = 1.0
_VERSION = "\0version"


@dataclass(frozen=True)
class TokenDigest:
    """A token known by its hash alone: what a dashboard session carries instead of the secret."""

    digest: str


Credentials = HTTPAuthorizationCredentials | TokenDigest


@dataclass(frozen=True)
class Caller:
    """The authenticated caller: a token, or nobody when anonymous access is on."""

    token: TokenRecord | None

    @property
    def login(self) -> str | None:
        """The member the token belongs to (what `is_requester` and `user_decision` answer for)."""
        return self.token.member_login if self.token else None

    def may_read(self, environment_id: int | None) -> bool:
        """Whether the caller may see data of this environment (None: of no known environment)."""
        if self.token is None or self.token.environment_ids is None:
            return True
        return environment_id is not None and self.token.may_read_environment(environment_id)

    @property
    def environment_ids(self) -> tuple[int, ...] | None:
        """The environments the caller is restricted to, or None for all."""
        return None if self.token is None else self.token.environment_ids


class Snapshot:
    """A read snapshot of the store opened on first use: a request answered from the caches
    never opens one."""

    def __init__(self, store: Store, stack: ExitStack):
        self._store = store
        self._stack = stack
        self._reader: Reader | None = None

    @property
    def reader(self) -> Reader:
        if self._reader is None:
            self._reader = self._stack.enter_context(self._store.reading())
        return self._reader


@dataclass
class Access:
    """One authorised read: the (lazy) snapshot, the caller, the store version the answer is
    cached under, and the environment of the path if any."""

    snapshot: Snapshot
    caller: Caller
    environment: EnvironmentRecord | None
    version: int

    @property
    def reader(self) -> Reader:
        return self.snapshot.reader

    @property
    def env(self) -> EnvironmentRecord:
        assert self.environment is not None, "route has no environment"
        return self.environment


@dataclass(frozen=True)
class Environments:
    """The environments as of one store version, by id and by public project token."""

    version: int
    by_id: dict[int, EnvironmentRecord]
    by_key: dict[str, EnvironmentRecord]
    by_token: dict[str, EnvironmentRecord]

    @classmethod
    def read(cls, reader: Reader, version: int) -> Environments:
        envs = reader.list_environments()
        return cls(version, {e.id: e for e in envs}, {e.key: e for e in envs}, {e.api_token: e for e in envs})


class Gate:
    """Opens authorised read snapshots of the store for request handlers.

    Environments change only with the store version, so they are kept per version. A valid
    token is trusted for `token_cache_seconds` and the store version is read at most every
    `version_check_seconds`, so a request answered from the caches touches no database.
    """

    def __init__(self, store: Store, settings: ApiSettings):
        self.store = store
        self.settings = settings
        self._environments: Environments | None = None
        self._tokens: dict[str, tuple[TokenRecord, float]] = {}
        self._version: tuple[int, float] | None = None
        # When a request was sent to renew an aged-out cache entry (a token's hash, or
        # `_VERSION` for the store version): until it has (or `RENEWAL_SECONDS` pass), the
        # event-loop fast path keeps answering from the aged entry instead of sending every
        # concurrent request to the store at once.
        self._renewing: dict[str, float] = {}

    def environments(self, snapshot: Snapshot, version: int) -> Environments:
        current = self._environments
        if current is None or current.version != version:
            current = Environments.read(snapshot.reader, version)
            if self._environments is None or self._environments.version < version:
                self._environments = current
        return current

    @contextmanager
    def open(
        self,
        credentials: Credentials | None,
        scope: str | None,
        *,
        project_id: int | None = None,
        environment_key: str | None = None,
        api_token: str | None = None,
    ) -> Iterator[Access]:
        """A read snapshot for a caller holding `scope`, on the environment named, if any
        (by id, key or public project token)."""
        with ExitStack() as stack:
            snapshot = Snapshot(self.store, stack)
            caller = self.caller(snapshot, credentials, scope)
            version = self.version(snapshot)
            environment = None
            if project_id is not None or environment_key is not None or api_token is not None:
                envs = self.environments(snapshot, version)
                if project_id is not None:
                    environment = envs.by_id.get(project_id)
                    _require_readable(caller, environment, f"environment {project_id}")
                elif environment_key is not None:
                    environment = envs.by_key.get(environment_key)
                    _require_readable(caller, environment, f"environment {environment_key!r}")
                else:
                    environment = envs.by_token.get(api_token or "")
                    _require_readable(
                        caller, environment, "environment with this project token", attr="token"
                    )
            yield Access(snapshot, caller, environment, version)

    def version(self, snapshot: Snapshot) -> int:
        """The store version, read at most every `version_check_seconds`."""
        ttl = self.settings.version_check_seconds
        now = time.monotonic()
        cached = self._version
        if ttl > 0 and cached is not None and cached[1] > now:
            return cached[0]
        version = snapshot.reader.store_version()
        if ttl > 0:
            self._version = (version, now + ttl)
        self._renewing.pop(_VERSION, None)
        return version

    def caller(self, snapshot: Snapshot, credentials: Credentials | None, scope: str | None) -> Caller:
        """Authenticate (in the snapshot, unless the token is cached) and check `scope` (None:
        any live token will do). A `TokenDigest` is looked up like the token it is the hash of,
        so revoking the token ends the sessions made with it."""
        if isinstance(credentials, TokenDigest):
            digest = credentials.digest
        elif credentials is not None and credentials.credentials:
            digest = token_hash(credentials.credentials)
        else:
            if self.settings.allow_anonymous:
                return Caller(None)
            raise ApiError(
                401,
                "authentication required: send `Authorization: Bearer <token>` with a token from "
                "`reconciler token create`",
                headers=_CHALLENGE,
            )
        record = self._token(snapshot, digest)
        if record is None or record.revoked_at is not None:
            raise ApiError(401, "the bearer token is unknown or revoked", headers=_CHALLENGE)
        if scope is not None and not record.allows(scope):
            raise ApiError(
                403,
                f"this token lacks the scope {scope!r} (it has: {', '.join(record.scopes)}); "
                f"create one with `reconciler token create --scope {scope}`",
            )
        return Caller(record)

    def cached_caller(self, credentials: Credentials | None) -> Caller | None:
        """The caller, when knowing it needs no store read: a live token in the cache (or
        being renewed by another request), or nobody under anonymous access. None: ask `open`
        (which may read the store)."""
        if isinstance(credentials, TokenDigest):
            digest = credentials.digest
        elif credentials is not None and credentials.credentials:
            digest = token_hash(credentials.credentials)
        else:
            return Caller(None) if self.settings.allow_anonymous else None
        cached = self._tokens.get(digest)
        return Caller(cached[0]) if cached is not None and self._fresh(digest, cached[1]) else None

    def cached_version(self) -> int | None:
        """The store version while it is trusted (or being renewed by another request), else
        None (ask `open`)."""
        cached = self._version
        return cached[0] if cached is not None and self._fresh(_VERSION, cached[1]) else None

    def _fresh(self, key: str, expires: float) -> bool:
        """Whether an entry may answer on the fast path. The first request to find it aged out
        renews it through the store; the others keep using it meanwhile."""
        now = time.monotonic()
        if expires > now:
            return True
        started = self._renewing.get(key)
        if started is not None and now - started < RENEWAL_SECONDS:
            return True
        if len(self._renewing) >= TOKEN_CACHE_ENTRIES:
            self._renewing.clear()
        self._renewing[key] = now
        return False

    def _token(self, snapshot: Snapshot, digest: str) -> TokenRecord | None:
        """The live token for a hash. A found token is remembered for `token_cache_seconds`
        (so a revocation takes at most that long to bite); an unknown one is asked every time."""
        ttl = self.settings.token_cache_seconds
        now = time.monotonic()
        cached = self._tokens.get(digest)
        if cached is not None and cached[1] > now:
            return cached[0]
        record = snapshot.reader.token_by_hash(digest)
        self._renewing.pop(digest, None)
        if record is None or record.revoked_at is not None:
            self._tokens.pop(digest, None)
        if ttl > 0 and record is not None and record.revoked_at is None:
            if len(self._tokens) >= TOKEN_CACHE_ENTRIES:
                self._tokens.clear()
            self._tokens[digest] = (record, now + ttl)
        return record


def _require_readable(
    caller: Caller, environment: EnvironmentRecord | None, what: str, attr: str | None = None
) -> None:
    if environment is None or not caller.may_read(environment.id):
        raise ApiError(404, f"no {what} (or this token may not read it)", attr=attr)
