"""PostHog SDK local evaluation: `/flags/definitions` and `/api/feature_flag/local_evaluation`.

SDKs poll these every few seconds with `If-None-Match`, so the body is built once per flags
version of the environment (`flags_version`) and group types, and kept with its ETag; a poll
that finds nothing new is answered 304 from the caches (see `auth.Gate`), usually without any
query.

The body is PostHog's: `group_type_mapping` names the environment's group types (from
`reconciler.yaml`), and each payload in `filters.payloads` is JSON text, as PostHog stores and
serves it, so the SDKs decode it into the same value `/flags` answers.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Security
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials

from reconciler.api import models
from reconciler.api.auth import Access, bearer
from reconciler.api.context import ApiContext
from reconciler.api.errors import error_responses
from reconciler.api.paging import SAFE_TEXT, ProjectId
from reconciler.model.states import FEATURE_FLAG_READ
from reconciler.store import EnvironmentRecord, FlagRecord, Reader

Credentials = Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]
ProjectToken = Annotated[
    str, Query(min_length=1, max_length=200, pattern=SAFE_TEXT, description="The environment's `api_token`.")
]


def payload_text(value: Any) -> str:
    """A payload as PostHog keeps it: JSON text (a string payload is quoted, `"hi"`)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def local_flag(record: FlagRecord) -> dict[str, Any]:
    """One flag as PostHog's local-evaluation payload lists it."""
    flag = record.flag
    filters = flag.filters.model_dump(mode="json")
    filters["payloads"] = {k: payload_text(v) for k, v in filters["payloads"].items()}
    return {
        "id": flag.id,
        "team_id": record.environment_id,
        "name": flag.name,
        "key": flag.key,
        "filters": filters,
        "deleted": flag.deleted,
        "active": flag.active,
        "ensure_experience_continuity": flag.ensure_experience_continuity,
        "version": flag.version,
    }


@dataclass(frozen=True)
class Definitions:
    store_version: int
    flags_version: int
    group_types: dict[str, str]
    etag: str
    body: bytes


class DefinitionsCache:
    """The rendered definitions of each environment, valid while its flags version and group types hold."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[int, Definitions] = {}
        self.builds = 0  # how many bodies were rendered: one per environment and version

    def cached(self, environment_id: int, store_version: int) -> Definitions | None:
        """The definitions already built for this store version, if any (no query)."""
        entry = self._entries.get(environment_id)
        return entry if entry is not None and entry.store_version == store_version else None

    def get(self, access: Access, environment: EnvironmentRecord, store_version: int) -> Definitions:
        """The definitions as of `store_version`: while the store has not changed, no query at
        all; after a write elsewhere, one counter read; only a flag or group-type change rebuilds
        the body."""
        entry = self._entries.get(environment.id)
        if entry is not None and entry.store_version == store_version:
            return entry
        flags_version = access.reader.flags_version(environment.id)
        if (
            entry is not None
            and entry.flags_version == flags_version
            and entry.group_types == environment.group_types
        ):
            entry = Definitions(store_version, flags_version, entry.group_types, entry.etag, entry.body)
        else:
            entry = self._build(access.reader, environment, store_version, flags_version)
        with self._lock:
            current = self._entries.get(environment.id)
            if current is None or current.store_version <= store_version:
                self._entries[environment.id] = entry
        return entry

    def _build(
        self, reader: Reader, environment: EnvironmentRecord, store_version: int, flags_version: int
    ) -> Definitions:
        flags = reader.list_flags(environment.id, include_deleted=False)
        group_types = dict(environment.group_types)
        body = {"flags": [local_flag(f) for f in flags], "group_type_mapping": group_types, "cohorts": {}}
        content = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
        with self._lock:
            self.builds += 1
        # A hash of the body, not a version number: replicas agree on it, and a rebuilt
        # store with the same flags keeps clients' caches valid.
        etag = f'"{hashlib.sha256(content).hexdigest()[:32]}"'
        return Definitions(store_version, flags_version, group_types, etag, content)


def etag_matches(header: str | None, etag: str) -> bool:
    """RFC 9110 weak comparison of `If-None-Match` against our ETag."""
    if not header:
        return False
    candidates = [c.strip() for c in header.split(",")]
    return any(c == "*" or c.removeprefix("W/") == etag for c in candidates)


def router(ctx: ApiContext, cache: DefinitionsCache, prefixes: tuple[str, ...] = ()) -> APIRouter:
    """The definitions routes, and under each of `prefixes` PostHog's
    `{prefix}/{project_id}/feature_flags/local_evaluation/` (include this router before the
    flag routes, whose `feature_flags/{flag_id}/` would take `local_evaluation` for an id)."""
    api = APIRouter(tags=["local evaluation"])
    responses = error_responses(401, 403, 404, 422)
    responses[304] = {"description": "not modified: the ETag sent in If-None-Match is current"}

    # Plain `def` handlers, run in the worker threads: even a cache hit reads a counter from
    # the store, and a store that hangs must never stop the event loop (and /healthz with it).
    def definitions(
        request: Request,
        token: str | None,
        credentials: HTTPAuthorizationCredentials | None,
        project_id: str | None = None,
    ) -> Response:
        with ctx.gate.open(credentials, FEATURE_FLAG_READ, api_token=token, project_id=project_id) as access:
            entry = cache.get(access, access.env, access.version)
        headers = {"ETag": entry.etag, "Cache-Control": "no-cache"}
        if etag_matches(request.headers.get("if-none-match"), entry.etag):
            return Response(status_code=304, headers=headers)
        return Response(entry.body, media_type="application/json", headers=headers)

    @api.get("/flags/definitions", response_model=models.LocalEvaluation, responses=responses)
    def flag_definitions(request: Request, token: ProjectToken, credentials: Credentials) -> Response:
        """Flag definitions of the environment whose `api_token` is `token`, for SDK local evaluation."""
        return definitions(request, token, credentials)

    @api.get("/api/feature_flag/local_evaluation", response_model=models.LocalEvaluation, responses=responses)
    def local_evaluation(request: Request, token: ProjectToken, credentials: Credentials) -> Response:
        """The older path of the same definitions, still polled by older SDKs."""
        return definitions(request, token, credentials)

    for prefix in prefixes:

        @api.get(
            prefix + "/{project_id}/feature_flags/local_evaluation/",
            response_model=models.LocalEvaluation,
            responses=responses,
            name=f"project_local_evaluation{prefix.replace('/', '_')}",
        )
        def project_local_evaluation(
            request: Request, project_id: ProjectId, credentials: Credentials
        ) -> Response:
            """The same definitions by environment id, where PostHog serves them to a personal API key."""
            return definitions(request, None, credentials, project_id)

    return api
