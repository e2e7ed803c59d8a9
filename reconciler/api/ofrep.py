"""OpenFeature Remote Evaluation Protocol (OFREP): every OpenFeature SDK reads our flags.

`POST /ofrep/v1/evaluate/flags/{key}` evaluates one flag (what server providers call) and
`POST /ofrep/v1/evaluate/flags` all of them (what web providers poll, with `ETag` and
`If-None-Match`), from the same `Evaluator` per environment and flags version as PostHog's
`/flags` (`remoteeval.EvaluatorCache`), so both protocols answer the same values.

Who asks: the environment's public project key, or a reconciler token with
`feature_flag:read` bound to exactly one environment, sent as `X-API-Key` or as
`Authorization: Bearer`. The evaluation context maps onto PostHog's: `targetingKey` is the
distinct id, `$groups` (group type → key) and `$group_properties` (group type → properties)
are the groups, every other attribute is a person property.

Answers: a boolean flag's value is a boolean, a multivariate flag's the variant key that
matched, else `false` as PostHog answers it. The flag's payload for that value is in
`metadata.payload` as JSON text (OFREP metadata holds only scalars). Failures carry OFREP's
`errorCode`: `PARSE_ERROR`, `INVALID_CONTEXT`, `TARGETING_KEY_MISSING`, `FLAG_NOT_FOUND`,
`GENERAL`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from reconciler.api.auth import Snapshot
from reconciler.api.context import ApiContext
from reconciler.api.errors import ApiError
from reconciler.api.paging import dumps
from reconciler.api.remoteeval import EvaluatorCache, public_environment, trusted_evaluator
from reconciler.api.sdkbody import FLAGS_BODY_BYTES, check_shape, decode, read_body
from reconciler.evaluation import (
    CONDITION_MATCH,
    FLAG_DISABLED,
    OUT_OF_ROLLOUT_BOUND,
    Context,
    Evaluator,
    FlagResult,
)
from reconciler.model.states import FEATURE_FLAG_READ
from reconciler.store import EnvironmentRecord
from reconciler.store.tokens import TOKEN_PREFIX

PREFIX = "/ofrep/v1/evaluate/flags"
TARGETING_KEY = "targetingKey"
GROUPS = "$groups"
GROUP_PROPERTIES = "$group_properties"
MAX_TARGETING_KEY = 400  # characters; PostHog's distinct ids are at most 200
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="ofrep"'}

# OFREP's error codes (OpenFeature's, as the providers map them).
PARSE_ERROR = "PARSE_ERROR"
INVALID_CONTEXT = "INVALID_CONTEXT"
TARGETING_KEY_MISSING = "TARGETING_KEY_MISSING"
FLAG_NOT_FOUND = "FLAG_NOT_FOUND"
GENERAL = "GENERAL"


class OfrepError(Exception):
    """A failed OFREP request: its status, OFREP error code and a message saying what to do."""

    def __init__(self, status: int, code: str, details: str, headers: dict[str, str] | None = None):
        super().__init__(details)
        self.status = status
        self.code = code
        self.details = details
        self.headers = headers

    def response(self, key: str | None = None) -> Response:
        body: dict[str, Any] = {"errorCode": self.code, "errorDetails": self.details}
        if key is not None:
            body = {"key": key, **body}
        return Response(dumps(body), self.status, headers=self.headers, media_type="application/json")


# --- the OpenAPI description (the shapes of OFREP's own specification) ----------------------


class Evaluation(BaseModel):
    """One flag evaluated: its value, OpenFeature reason, variant and metadata."""

    key: str
    value: bool | str = Field(description="A boolean flag's value, or a multivariate flag's variant key.")
    reason: str = Field(description="STATIC, TARGETING_MATCH, SPLIT, DEFAULT or DISABLED.")
    variant: str = Field(description="The variant key, or `true`/`false` for a boolean value.")
    metadata: dict[str, bool | int | float | str] = Field(
        description="`flagId`, `version`, and `payload` (JSON text) when the value has one."
    )


class EvaluationFailure(BaseModel):
    """One flag that could not be evaluated (or the whole request, without `key`)."""

    key: str | None = None
    errorCode: str  # OFREP's field name
    errorDetails: str  # OFREP's field name


class BulkEvaluation(BaseModel):
    flags: list[Evaluation | EvaluationFailure]


def _failure(description: str) -> dict[str, Any]:
    return {"model": EvaluationFailure, "description": description}


SINGLE_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _failure(
        "PARSE_ERROR, INVALID_CONTEXT, TARGETING_KEY_MISSING, or GENERAL for a flag that "
        "could not be evaluated"
    ),
    401: _failure("no credential, or one that names no environment"),
    403: _failure("a reconciler token without `feature_flag:read` or not bound to exactly one environment"),
    404: _failure("FLAG_NOT_FOUND: the environment has no live flag with this key"),
    413: _failure("the request is larger than the limit"),
}
BULK_RESPONSES: dict[int | str, dict[str, Any]] = {
    **{s: r for s, r in SINGLE_RESPONSES.items() if s != 404},
    304: {"description": "not modified: the ETag sent in If-None-Match is current"},
}


# --- the request: credential and context -----------------------------------------------------


def credential(request: Request) -> str:
    """The key or token from `X-API-Key` or `Authorization: Bearer` (one, or both equal)."""
    api_key = request.headers.get("x-api-key", "").strip()
    authorization = request.headers.get("authorization", "").strip()
    bearer = ""
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise OfrepError(
                401, GENERAL, "send `Authorization: Bearer <key>` or `X-API-Key: <key>`", _CHALLENGE
            )
        bearer = value.strip()
    if api_key and bearer and api_key != bearer:
        raise OfrepError(401, GENERAL, "`X-API-Key` and `Authorization` name different credentials: send one")
    found = api_key or bearer
    if not found:
        raise OfrepError(
            401,
            GENERAL,
            "no credential: send the environment's project key (or a reconciler token bound to one "
            "environment) as `Authorization: Bearer <key>` or `X-API-Key: <key>`",
            _CHALLENGE,
        )
    return found


async def read_raw(request: Request) -> bytes:
    """The body's JSON bytes, bounded as the PostHog endpoints bound theirs."""
    try:
        return decode(request, await read_body(request, FLAGS_BODY_BYTES), FLAGS_BODY_BYTES)
    except ApiError as err:
        raise OfrepError(err.status, PARSE_ERROR if err.status == 400 else GENERAL, err.detail) from err


def parse_request(raw: bytes) -> dict[str, Any]:
    """The request object, within the depth and size limits; an empty body is `{}`."""
    if not raw.strip():
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        raise OfrepError(400, PARSE_ERROR, f"the request is not valid JSON: {err}") from err
    try:
        check_shape(body, "request")
    except ApiError as err:
        raise OfrepError(err.status, INVALID_CONTEXT if err.status == 400 else GENERAL, err.detail) from err
    if not isinstance(body, dict):
        raise OfrepError(400, PARSE_ERROR, 'the request must be a JSON object: {"context": {...}}')
    return body


def _group_key(name: str, value: Any) -> str:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise OfrepError(400, INVALID_CONTEXT, f"`{GROUPS}.{name}` must be the group's key (text or a number)")


def _object(raw: Mapping[str, Any], name: str) -> dict[str, Any]:
    value = raw.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise OfrepError(400, INVALID_CONTEXT, f"`{name}` must be an object")
    return value


def evaluation_context(body: Mapping[str, Any]) -> Context:
    """The PostHog context of an OFREP request's `context`."""
    raw = body.get("context")
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise OfrepError(400, INVALID_CONTEXT, "`context` must be an object of attributes")
    key = raw.get(TARGETING_KEY)
    if key is None or key == "":
        raise OfrepError(
            400, TARGETING_KEY_MISSING, "the context has no `targetingKey`: send the user's distinct id"
        )
    if not isinstance(key, str):
        raise OfrepError(400, INVALID_CONTEXT, "`targetingKey` must be a string (the distinct id)")
    if len(key) > MAX_TARGETING_KEY:
        raise OfrepError(
            400, INVALID_CONTEXT, f"`targetingKey` is longer than {MAX_TARGETING_KEY} characters"
        )
    groups = {name: _group_key(name, value) for name, value in _object(raw, GROUPS).items()}
    group_properties = _object(raw, GROUP_PROPERTIES)
    for name, properties in group_properties.items():
        if not isinstance(properties, dict):
            raise OfrepError(400, INVALID_CONTEXT, f"`{GROUP_PROPERTIES}.{name}` must be an object")
    reserved = (TARGETING_KEY, GROUPS, GROUP_PROPERTIES)
    person = {k: v for k, v in raw.items() if k not in reserved}
    return Context(key, person, groups, group_properties)


# --- the answer ------------------------------------------------------------------------------


def reason(evaluator: Evaluator, result: FlagResult) -> str:
    """OpenFeature's reason for PostHog's: a matched condition with property filters is a
    TARGETING_MATCH, one decided by the hash (partial rollout, hashed variant) a SPLIT, one
    that matches everybody the same way STATIC; no match is DEFAULT, an inactive flag DISABLED."""
    if result.reason == FLAG_DISABLED:
        return "DISABLED"
    if result.reason == OUT_OF_ROLLOUT_BOUND:
        return "SPLIT"
    if result.reason != CONDITION_MATCH:
        return "DEFAULT"
    flag = evaluator.flag(result.key)
    groups = flag.filters.groups if flag is not None else []
    index = result.condition_index
    if index is None or index >= len(groups):
        return "TARGETING_MATCH"
    condition = groups[index]
    if condition.properties:
        return "TARGETING_MATCH"
    hashed_variant = result.variant is not None and condition.variant is None
    partial = condition.rollout_percentage is not None and condition.rollout_percentage < 100
    return "SPLIT" if hashed_variant or partial else "STATIC"


def evaluation(evaluator: Evaluator, result: FlagResult) -> dict[str, Any]:
    """One flag's OFREP answer (an evaluation failure when PostHog could not compute it)."""
    if result.error is not None:
        return {
            "key": result.key,
            "errorCode": GENERAL,
            "errorDetails": f"the flag cannot be evaluated: {result.error}",
        }
    value = result.value
    metadata: dict[str, Any] = {"flagId": result.flag_id, "version": result.version}
    if result.payload is not None:
        metadata["payload"] = dumps(result.payload).decode()
    return {
        "key": result.key,
        "value": value,
        "reason": reason(evaluator, result),
        "variant": value if isinstance(value, str) else ("true" if value else "false"),
        "metadata": metadata,
    }


def bulk_etag(environment: EnvironmentRecord, body: Mapping[str, Any], content: bytes) -> str:
    """What a cached bulk answer is valid for: this environment, this context, these answers
    (so every flag change, and every value a clock-relative date filter turns, makes a new one)."""
    digest = hashlib.sha256(f"{environment.id}\0".encode())
    digest.update(orjson.dumps(body.get("context"), option=orjson.OPT_SORT_KEYS))
    digest.update(b"\0" + content)
    return f'"{digest.hexdigest()[:32]}"'


def bulk_key(body: Mapping[str, Any]) -> tuple[str, bytes]:
    """What a bulk answer is remembered under in its evaluator: the context as the ETag reads it."""
    return ("ofrep-bulk", orjson.dumps(body.get("context"), option=orjson.OPT_SORT_KEYS))


def bulk_response(answer: tuple[bytes, str], if_none_match: str | None) -> Response:
    content, etag = answer
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if current(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    return Response(content, media_type="application/json", headers=headers)


def current(header: str | None, etag: str) -> bool:
    """Whether `If-None-Match` names this ETag (weak comparison). `*` is no match: a 304 must
    mean "the answer you hold for this context is current", which `*` cannot claim."""
    return bool(header) and etag in {c.strip().removeprefix("W/") for c in (header or "").split(",")}


@dataclass(frozen=True)
class Target:
    environment: EnvironmentRecord
    evaluator: Evaluator


class Targets:
    """Which environment a credential names, and its evaluator."""

    def __init__(self, ctx: ApiContext, cache: EvaluatorCache) -> None:
        self.ctx = ctx
        self.cache = cache

    def __call__(self, secret: str) -> Target:
        """In a worker thread: the store may be asked."""
        with ExitStack() as stack:
            snapshot = Snapshot(self.ctx.store, stack)
            environment, version = public_environment(self.ctx, secret, snapshot)
            if environment is None:
                if not secret.startswith(TOKEN_PREFIX):
                    raise OfrepError(
                        401,
                        GENERAL,
                        "the key names no environment: use the environment's project key",
                        _CHALLENGE,
                    )
                environment = self.token_environment(snapshot, secret, version)
            return Target(environment, self.cache.get(snapshot, environment, version))

    def token_environment(self, snapshot: Snapshot, secret: str, version: int) -> EnvironmentRecord:
        """The one environment a reconciler token with `feature_flag:read` is bound to."""
        credentials = HTTPAuthorizationCredentials(scheme="Bearer", credentials=secret)
        try:
            caller = self.ctx.gate.caller(snapshot, credentials, FEATURE_FLAG_READ)
        except ApiError as err:
            raise OfrepError(err.status, GENERAL, err.detail, err.headers) from err
        bound = caller.environment_ids
        if bound is None or len(bound) != 1:
            which = "every environment" if bound is None else f"{len(bound)} environments"
            raise OfrepError(
                403,
                GENERAL,
                f"this token may read {which}; OFREP evaluates one environment, so use its project key or a "
                "token bound to it: `reconciler token create --scope feature_flag:read --environment <id>`",
            )
        environment = self.ctx.gate.environments(snapshot, version).by_id.get(bound[0])
        if environment is None:
            raise OfrepError(403, GENERAL, "this token's environment no longer exists")
        return environment


def router(ctx: ApiContext, cache: EvaluatorCache) -> APIRouter:
    api = APIRouter(tags=["OpenFeature (OFREP)"])
    target = Targets(ctx, cache)

    # The credential is checked before the body is parsed, and everything after reading the
    # body runs in a worker thread: the store may be asked, and a bulk evaluation of many
    # flags should not hold the event loop (and /healthz with it).
    def single(secret: str, raw: bytes, key: str) -> Response:
        found = target(secret)
        body = parse_request(raw)
        if found.evaluator.flag(key) is None:
            raise OfrepError(404, FLAG_NOT_FOUND, f"no live flag {key!r} in this environment")
        result = found.evaluator.evaluate(key, evaluation_context(body))
        assert result is not None
        answer = evaluation(found.evaluator, result)
        status = 400 if "errorCode" in answer else 200
        return Response(dumps(answer), status, media_type="application/json")

    def bulk(secret: str, raw: bytes, if_none_match: str | None) -> Response:
        found = target(secret)
        body = parse_request(raw)

        def answer() -> tuple[bytes, str]:
            results = found.evaluator.evaluate_all(evaluation_context(body))
            content = dumps({"flags": [evaluation(found.evaluator, r) for r in results.values()]})
            return content, bulk_etag(found.environment, body, content)

        # The evaluator is this environment's at this flags version: the answer and its ETag
        # depend on nothing else but the context, so they are remembered with it.
        return bulk_response(found.evaluator.remember(bulk_key(body), answer), if_none_match)

    def bulk_recalled(secret: str, raw: bytes, if_none_match: str | None) -> Response | None:
        """On the event loop: the answer remembered for this project key and context, if every
        fact it depends on is trusted from memory (else None: the full way)."""
        evaluator = trusted_evaluator(ctx, cache, secret)
        if evaluator is None:
            return None
        found = evaluator.recall(bulk_key(parse_request(raw)))
        return bulk_response(found, if_none_match) if isinstance(found, tuple) else None

    @api.post(PREFIX + "/{key:path}", response_model=Evaluation, responses=SINGLE_RESPONSES)
    async def evaluate_flag(key: str, request: Request) -> Response:
        """One flag for the request's `context` (OFREP single evaluation)."""
        try:
            secret = credential(request)
            return await run_in_threadpool(single, secret, await read_raw(request), key)
        except OfrepError as err:
            return err.response(key)

    @api.post(PREFIX, response_model=BulkEvaluation, responses=BULK_RESPONSES)
    async def evaluate_flags(request: Request) -> Response:
        """Every live flag for the request's `context` (OFREP bulk evaluation), with an `ETag`
        that covers the environment, the context and the answers; `If-None-Match` with the
        current one is answered 304."""
        try:
            secret = credential(request)
            raw = await read_raw(request)
            if_none_match = request.headers.get("if-none-match")
            recalled = bulk_recalled(secret, raw, if_none_match)
            if recalled is not None:
                return recalled
            return await run_in_threadpool(bulk, secret, raw, if_none_match)
        except OfrepError as err:
            return err.response()

    return api
