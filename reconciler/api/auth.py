"""Who is calling and what they may read: bearer tokens, scopes and environment restriction.

Every data handler opens one read snapshot with `Gate.open(...)`, which authenticates the
bearer token in that snapshot, checks the scope, and resolves the environment of the path:
missing or unknown token → 401, missing scope → 403, an environment that does not exist or
that the token may not read → 404 (the same answer, so a token learns nothing about
environments it cannot read).
"""

from __future__ import annotations

import threading
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


@dataclass(frozen=True)
class TokenDigest:
    """A token known by its hash alone: what a dashboard session carries instead of the secret."""

    digest: str


Credentials = HTTPAuthorizationCredentials | TokenDigest


def credentials_digest(credentials: Credentials | None) -> str | None:
    """The hash of the token the credentials carry (a session carries the hash itself), or None."""
    if isinstance(credentials, TokenDigest):
        return credentials.digest
    if credentials is not None and credentials.credentials:
        return token_hash(credentials.credentials)
    return None


@dataclass(frozen=True)
class Caller:
    """The authenticated caller: a token (and its hash), or nobody when anonymous access is on."""

    token: TokenRecord | None
    digest: str | None = None

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
        self._refreshing: set[str] = set()
        self._refresh_lock = threading.Lock()

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
        project_id: int | str | None = None,
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
                if project_id is not None:  # (checked first: a token query parameter never overrides it)
                    environment = _by_project_id(envs, caller, project_id)
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
        return version

    def caller(self, snapshot: Snapshot, credentials: Credentials | None, scope: str | None) -> Caller:
        """Authenticate (in the snapshot, unless the token is cached) and check `scope` (None:
        any live token will do). A `TokenDigest` is looked up like the token it is the hash of,
        so revoking the token ends the sessions made with it."""
        digest = credentials_digest(credentials)
        if digest is None:
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
        return Caller(record, digest)

    # --- what `fastpath` may use without a snapshot: only what is cached and still fresh ---

    def cached_caller(self, digest: str | None) -> Caller | None:
        """The caller for a token hash (None: no token) if the cache still vouches for it;
        None when only the store can say (unknown, expired from the cache, or no token and no
        anonymous access, which the full path answers 401)."""
        if digest is None:
            return Caller(None) if self.settings.allow_anonymous else None
        cached = self._tokens.get(digest)
        if cached is None or cached[1] <= time.monotonic() or cached[0].revoked_at is not None:
            return None
        return Caller(cached[0], digest)

    def cached_version(self) -> int | None:
        """The store version while it is trusted (`version_check_seconds`), else None."""
        cached = self._version
        if cached is None or cached[1] <= time.monotonic():
            return None
        return cached[0]

    # Refreshing ahead: `fastpath` asks for a fresh read (in a worker thread) once an entry is
    # past this share of its lifetime, so busy clients keep finding fresh entries instead of all
    # missing at the same instant and queueing for the store together. An entry still expires
    # on time if the refresh fails or is slow, so revocation and new versions are never later.
    REFRESH_AFTER = 0.25

    def version_due(self) -> bool:
        """Whether the trusted version should be read again soon (and no read is under way)."""
        cached, ttl = self._version, self.settings.version_check_seconds
        if cached is None or ttl <= 0 or "version" in self._refreshing:
            return False
        return cached[1] - time.monotonic() < ttl * (1 - self.REFRESH_AFTER)

    def token_due(self, digest: str) -> bool:
        """Whether a trusted token should be checked in the store again soon."""
        cached, ttl = self._tokens.get(digest), self.settings.token_cache_seconds
        if cached is None or ttl <= 0 or digest in self._refreshing:
            return False
        return cached[1] - time.monotonic() < ttl * (1 - self.REFRESH_AFTER)

    def refresh(self, version: bool, digest: str | None) -> None:
        """Read the store version and/or one token again (blocking: run it in a worker thread)."""
        keys = [k for k in ("version" if version else None, digest) if k is not None]
        with self._refresh_lock:
            keys = [k for k in keys if k not in self._refreshing]
            self._refreshing.update(keys)
        try:
            if keys:
                with self.store.reading() as reader:
                    if "version" in keys:
                        self._version = (
                            reader.store_version(),
                            time.monotonic() + self.settings.version_check_seconds,
                        )
                    if digest is not None and digest in keys:
                        self._recheck_token(reader, digest)
        finally:
            with self._refresh_lock:
                self._refreshing.difference_update(keys)

    def _recheck_token(self, reader: Reader, digest: str) -> None:
        record = reader.token_by_hash(digest)
        if record is None or record.revoked_at is not None:
            self._tokens.pop(digest, None)
        else:
            self._tokens[digest] = (record, time.monotonic() + self.settings.token_cache_seconds)

    def cached_environments(self, version: int) -> Environments | None:
        current = self._environments
        return current if current is not None and current.version == version else None

    def _token(self, snapshot: Snapshot, digest: str) -> TokenRecord | None:
        """The live token for a hash. A found token is remembered for `token_cache_seconds`
        (so a revocation takes at most that long to bite); an unknown one is asked every time."""
        ttl = self.settings.token_cache_seconds
        now = time.monotonic()
        cached = self._tokens.get(digest)
        if cached is not None and cached[1] > now:
            return cached[0]
        record = snapshot.reader.token_by_hash(digest)
        if record is None or record.revoked_at is not None:
            self._tokens.pop(digest, None)
        if ttl > 0 and record is not None and record.revoked_at is None:
            if len(self._tokens) >= TOKEN_CACHE_ENTRIES:
                self._tokens.clear()
            self._tokens[digest] = (record, now + ttl)
        return record


CURRENT = "@current"


def _by_project_id(envs: Environments, caller: Caller, project_id: int | str) -> EnvironmentRecord | None:
    """The environment a path's `project_id` names: its id, or PostHog's `@current` alias.

    `@current` is the caller's environment: the one a token is bound to, or the only one the
    project has. A token that may read several of several environments has no current one:
    answered 404 with what to write instead, never a guess.
    """
    if project_id != CURRENT:
        return envs.by_id.get(int(project_id))
    readable = sorted(e for e in envs.by_id if caller.may_read(e))
    if len(readable) <= 1:
        return envs.by_id[readable[0]] if readable else None
    raise ApiError(
        404,
        f"{CURRENT} names the environment of a token bound to one environment; this token may read "
        f"several: use an environment id ({', '.join(map(str, readable))}) instead",
    )


def _require_readable(
    caller: Caller, environment: EnvironmentRecord | None, what: str, attr: str | None = None
) -> None:
    if environment is None or not caller.may_read(environment.id):
        raise ApiError(404, f"no {what} (or this token may not read it)", attr=attr)
