"""What the PostHog SDKs post, read without trusting it: bounded, decoded, parsed, checked.

The SDKs post JSON, gzip-compressed JSON (`Content-Encoding: gzip`, or posthog-js's
`?compression=gzip-js`), base64 JSON (`?compression=base64`) or a form whose `data` field is
base64 JSON (older browser SDKs). Every step is bounded: the body as sent, the body once
inflated (a small gzip bomb never grows past the limit), the nesting depth and the number of
values, so a hostile body costs at most the limit in memory and time, and gets a 400 or 413
that says what was wrong.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import orjson
from fastapi import Request

from reconciler.api.errors import ApiError

FLAGS_BODY_BYTES = 1024 * 1024  # a /flags request: one caller and its properties
CAPTURE_BODY_BYTES = 20 * 1024 * 1024  # a capture batch; PostHog's own cap is 20 MB
MAX_DEPTH = 64
MAX_VALUES = 100_000
TOKEN_FIELDS = ("token", "api_key", "$token")
_URLSAFE = bytes.maketrans(b"-_", b"+/")


async def read_body(
    request: Request, limit: int, *, what: str = "the request body", cap: str = "the limit"
) -> bytes:
    """The raw body, refusing (413) more than `limit` bytes without reading past it; the refusal
    says `{what} ... exceeds {cap} of {limit} bytes`."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"{what} of {declared} bytes exceeds {cap} of {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"{what} exceeds {cap} of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def inflate(data: bytes, limit: int) -> bytes:
    """A gzip (or zlib) body inflated to at most `limit` bytes."""
    inflater = zlib.decompressobj(wbits=47)  # 32 + 15: gzip or zlib header, detected
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as err:
        raise ApiError(400, f"the body is marked gzip but does not inflate: {err}") from err
    if len(out) > limit or inflater.unconsumed_tail:
        raise ApiError(413, f"the body inflates to more than the limit of {limit} bytes")
    return out


def _base64(data: bytes) -> bytes:
    """Standard or URL-safe base64, padding optional (the browser SDKs send both)."""
    text = data.strip().translate(_URLSAFE)
    try:
        return base64.b64decode(text + b"=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError) as err:
        raise ApiError(400, f"the body is marked base64 but does not decode: {err}") from err


def decode(request: Request, raw: bytes, limit: int) -> bytes:
    """The JSON bytes inside the body, whichever way the SDK packed them."""
    compression = (request.query_params.get("compression") or "").lower()
    encoding = (request.headers.get("content-encoding") or "").lower()
    data = raw
    if encoding == "gzip" or compression in ("gzip", "gzip-js"):
        data = inflate(data, limit)
    content_type = (request.headers.get("content-type") or "").lower()
    if content_type.startswith("application/x-www-form-urlencoded"):
        try:
            field = parse_qs(data.decode("latin-1"), max_num_fields=16).get("data")
        except ValueError as err:  # more fields than any SDK sends
            raise ApiError(400, f"unreadable form body: {err}") from err
        if not field:
            raise ApiError(400, "a form body must carry the event or request as its `data` field")
        data = _base64(field[0].encode("latin-1"))
    elif compression == "base64":
        data = _base64(data)
    return data


def parse_json(data: bytes, what: str) -> Any:
    """`data` as JSON, within `MAX_DEPTH` levels and `MAX_VALUES` values."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as err:
        raise ApiError(400, f"the {what} is not valid JSON: {err}") from err
    check_shape(value, what)
    return value


def check_shape(value: Any, what: str) -> None:
    """Depth and size checked without recursion, so no body can exhaust the stack."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    seen = 0
    while stack:
        item, depth = stack.pop()
        seen += 1
        if seen > MAX_VALUES:
            raise ApiError(413, f"the {what} holds more than {MAX_VALUES} values")
        if depth > MAX_DEPTH:
            raise ApiError(400, f"the {what} is nested deeper than {MAX_DEPTH} levels")
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)


async def read_json(request: Request, limit: int, what: str) -> Any:
    raw = await read_body(request, limit)
    return parse_json(decode(request, raw, limit), what)


@dataclass(frozen=True)
class FlagsRequest:
    """A `/flags` or `/decide` request: who asks, with which properties, for which flags."""

    token: str | None
    distinct_id: str | None
    person_properties: dict[str, Any]
    groups: dict[str, str]
    group_properties: dict[str, dict[str, Any]]
    flag_keys: list[str] | None


def project_token(body: Any, request: Request) -> str | None:
    """The project key from the body (`token`, `api_key`, `$token`) or the query (`token`)."""
    if isinstance(body, dict):
        for name in TOKEN_FIELDS:
            value = body.get(name)
            if isinstance(value, str) and value:
                return value
    return request.query_params.get("token") or None


def _mapping(body: Mapping[str, Any], name: str) -> dict[str, Any]:
    value = body.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ApiError(400, f"`{name}` must be an object of property names to values", attr=name)
    return value


def _identifier(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str | int | float):
        text = str(value)
        return text or None
    return None


def flags_request(body: Any, request: Request) -> FlagsRequest:
    """The fields of a flags request, each checked for the type PostHog requires."""
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    groups = {}
    for name, key in _mapping(body, "groups").items():
        identifier = _identifier(key)
        if identifier is None:
            raise ApiError(400, f"group `{name}` must have a text or numeric key", attr="groups")
        groups[name] = identifier
    group_properties = _mapping(body, "group_properties")
    if not all(isinstance(v, dict) for v in group_properties.values()):
        raise ApiError(
            400, "`group_properties` must map each group type to an object", attr="group_properties"
        )
    keys = body.get("flag_keys_to_evaluate")
    if keys is not None and not (isinstance(keys, list) and all(isinstance(k, str) for k in keys)):
        raise ApiError(
            400, "`flag_keys_to_evaluate` must be a list of flag keys", attr="flag_keys_to_evaluate"
        )
    return FlagsRequest(
        token=project_token(body, request),
        distinct_id=_identifier(body.get("distinct_id")),
        person_properties=_mapping(body, "person_properties"),
        groups=groups,
        group_properties=group_properties,
        flag_keys=keys,
    )
