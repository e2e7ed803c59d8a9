"""JSON Schemas of the four document kinds, and validating plain data against them.

The schemas are generated from the pydantic models in `documents.py` (their single source),
checked into the top-level `schemas/` for editors (yaml-language-server) and other tools, and
shipped inside the package as `reconciler/schemas/`. `python -m reconciler.model.schema` rewrites
the checked-in files; a test keeps them equal to what the models generate.

Validation runs the models' compiled pydantic-core validators in strict JSON mode, which
accepts what the JSON Schemas accept, and reports every error as a JSON pointer and a message
(`SchemaIssue`). On top, every value of a document must be one the stores and SDKs hold
(`limits.py`): finite numbers, integers within 2^53 - 1, text without NUL. The schemas say so
in the descriptions of free-form values (payloads, property values) but cannot enforce it
there, so editors accept a few documents `validate` refuses. Every document read from a
repository goes through `validate_document`.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from reconciler.model.documents import DOCUMENT_MODELS
from reconciler.model.durations import DURATION_PATTERN, duration_problem
from reconciler.model.limits import MAX_SAFE_INTEGER
from reconciler.model.pointer import pointer_of
from reconciler.model.suggest import did_you_mean

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
# A URN, not a URL: nothing has to be fetched to resolve it, and it names no one's domain.
SCHEMA_ID_PREFIX = "urn:reconciler:schema:v1:"
SCHEMA_FILES = {
    "Project": "project.schema.json",
    "Members": "members.schema.json",
    "ApprovalPolicy": "approval-policy.schema.json",
    "ChangeRequest": "change-request.schema.json",
}
KINDS = tuple(SCHEMA_FILES)
# Issues listed per document: a file with thousands of stray properties says so in one line.
MAX_ISSUES = 50


@dataclass(frozen=True, slots=True)
class SchemaIssue:
    """One way a document does not fit its schema."""

    pointer: str
    message: str


@cache
def schema_for(kind: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one document kind, generated from its model."""
    model = DOCUMENT_MODELS[kind]
    generated = model.model_json_schema(mode="validation")
    return {
        "$schema": SCHEMA_DIALECT,
        "$id": SCHEMA_ID_PREFIX + SCHEMA_FILES[kind].removesuffix(".schema.json"),
        **generated,
    }


def schema_text(kind: str) -> str:
    """The schema of `kind` as the exact text of its file in `schemas/`."""
    return json.dumps(schema_for(kind), indent=2, ensure_ascii=False) + "\n"


def shipped_schema_dir() -> Path:
    """Where the schema files are: inside the installed package, or `schemas/` of a checkout."""
    packaged = Path(__file__).resolve().parents[1] / "schemas"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[2] / "schemas"


def write_schemas(directory: Path) -> list[Path]:
    """Write every kind's schema file into `directory`; return the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for kind, name in SCHEMA_FILES.items():
        target = directory / name
        target.write_text(schema_text(kind), encoding="utf-8")
        written.append(target)
    return written


def validate_document(
    data: Any, kind: str, *, max_issues: int | None = MAX_ISSUES
) -> tuple[BaseModel | None, list[SchemaIssue]]:
    """Validate plain data as a document of `kind`: the model, or None and every issue found
    (the first `max_issues` schema issues and a line saying how many more, unless None)."""
    if not isinstance(data, dict):
        return None, [SchemaIssue("", f"a {kind} document must be a mapping, not {_json_type(data)}")]
    unsafe = [] if _all_storable(data) else [SchemaIssue(p, m) for p, m in _unstorable(data, ())]
    model, issues = _validate(data, kind, max_issues)
    if not unsafe:
        return model, issues
    places = {issue.pointer for issue in unsafe}
    # An issue below a NUL-carrying name would repeat the NUL: the name's own issue says it all.
    rest = [i for i in issues if i.pointer not in places and "\0" not in i.pointer + i.message]
    return None, unsafe + rest


def _all_storable(data: Any) -> bool:
    """Whether `_unstorable` finds nothing: the same rules as one flat loop, a few percent of
    validating; the generator with its paths runs only for a document that fails."""
    stack = [data]
    while stack:
        value = stack.pop()
        kind = type(value)
        if kind is str:
            if "\0" in value:
                return False
        elif kind is dict:
            for key in value:
                if type(key) is str and "\0" in key:
                    return False
            stack.extend(value.values())
        elif kind is list:
            stack.extend(value)
        elif kind is float:
            if not math.isfinite(value):
                return False
        elif kind is int and not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            return False
    return True


def _unstorable(value: Any, path: tuple[str | int, ...]) -> Iterator[tuple[str, str]]:
    """Every value no store or SDK holds as written: NaN, infinities, integers beyond 2^53 - 1,
    and text with a NUL character (PostgreSQL text cannot hold one)."""
    if isinstance(value, float) and not math.isfinite(value):
        yield pointer_of(path), f"{value} is not a finite number: JSON has no NaN or Infinity"
    elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_SAFE_INTEGER:
        yield (
            pointer_of(path),
            (
                f"integer {_digits(value)} is out of range: "
                f"integers must lie within ±{MAX_SAFE_INTEGER} (2^53 - 1)"
            ),
        )
    elif isinstance(value, str) and "\0" in value:
        yield pointer_of(path), "text with a NUL character (\\0): remove it, the store cannot keep it"
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and "\0" in key:
                yield (
                    pointer_of(path),
                    "a property name with a NUL character (\\0): remove it, the store cannot keep it",
                )
            else:
                yield from _unstorable(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _unstorable(item, (*path, index))


def _finite(value: Any) -> Any:
    """`value` with every non-finite number replaced by 0, so that JSON can carry the rest."""
    if isinstance(value, float) and not math.isfinite(value):
        return 0.0
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


def _digits(value: int) -> str:
    text = str(value) if value.bit_length() < 1000 else ""  # str() refuses huge ints: say how long
    return text if len(text) <= 30 else f"of {len(text) or 'over 300'} digits"


def _validate(
    data: dict[str, Any], kind: str, max_issues: int | None
) -> tuple[BaseModel | None, list[SchemaIssue]]:
    model = DOCUMENT_MODELS[kind]
    try:
        # Fast path: strict Python-mode validation accepts a subset of what strict JSON mode
        # accepts (it refuses strings for datetimes and uuids), so its successes are final.
        return model.model_validate(data, strict=True), []
    except ValidationError:
        pass  # decide with the authoritative JSON-mode validator below
    try:
        text = json.dumps(data, ensure_ascii=False, allow_nan=False)
    except ValueError:  # a non-finite number, which `_unstorable` reports: judge the rest
        text = json.dumps(_finite(data), ensure_ascii=False, allow_nan=False)
    try:
        return model.model_validate_json(text, strict=True), []
    except ValidationError as err:
        return None, _issues(err, data, kind, max_issues)


def _issues(err: ValidationError, data: Any, kind: str, max_issues: int | None) -> list[SchemaIssue]:
    issues: dict[str, SchemaIssue] = {}
    for error in err.errors(include_url=False):
        parts, union_member = _data_path(error["loc"], data)
        pointer = pointer_of(parts)
        message = _message(error, parts, kind, error["loc"])
        if pointer in issues and union_member:
            continue  # one message per place: the first member of a union speaks for the rest
        issues.setdefault(pointer, SchemaIssue(pointer, message))
        if issues[pointer].message != message and not union_member:
            issues[pointer] = SchemaIssue(pointer, f"{issues[pointer].message}; {message}")
    found = list(issues.values())
    if max_issues is None or len(found) <= max_issues:
        return found
    more = SchemaIssue(
        "", f"{len(found) - max_issues} more problem(s) in this document are not listed: fix these first"
    )
    return [*found[:max_issues], more]


def _data_path(loc: tuple[str | int, ...], data: Any) -> tuple[list[str | int], bool]:
    """The path into the document of a pydantic error location.

    pydantic adds the names of union members and discriminator tags to locations; those are
    not in the document, so they are dropped (and reported as a union member).
    """
    parts: list[str | int] = []
    current = data
    skipped = False
    for index, item in enumerate(loc):
        if _has(current, item):
            parts.append(item)
            current = current[item]
        elif index == len(loc) - 1 and isinstance(current, dict):
            parts.append(item)  # a missing property: the pointer names where it belongs
            current = None
        else:
            skipped = True
    return parts, skipped


def _has(container: Any, item: str | int) -> bool:
    if isinstance(container, list):
        return isinstance(item, int) and item < len(container)
    return isinstance(container, dict) and isinstance(item, str) and item in container


def _message(error: Any, parts: list[str | int], kind: str, loc: tuple[str | int, ...] = ()) -> str:
    kind_of_error = error["type"]
    name = parts[-1] if parts else ""
    if kind_of_error == "missing":
        return f"missing required property `{name}`"
    if kind_of_error == "extra_forbidden":
        suggestion = did_you_mean(str(name), _properties_at(DOCUMENT_MODELS[kind], loc[:-1]))
        shown = str(name) if len(str(name)) <= 60 else str(name)[:57] + "..."
        return (
            f"unknown property `{shown}`{suggestion or ': check its spelling'}"
            f" (`reconciler schema {kind}` lists the properties)"
        )
    duration_pattern = error.get("ctx", {}).get("pattern") == DURATION_PATTERN
    if name == "expires_after" and (kind_of_error == "string_type" or duration_pattern):
        return duration_problem(error["input"])
    if parts == ["kind"] and kind_of_error == "literal_error":
        return f"files in this place hold {kind} documents, not kind {error['input']!r}"
    if kind_of_error == "timezone_aware":
        return (
            "a time needs a time zone, e.g. 2025-06-01T09:00:00Z or +02:00 "
            f"(got {json.dumps(error['input'])})"
        )
    if kind_of_error == "union_tag_not_found":
        return "missing `kind`: say which instruction this is"
    if kind_of_error == "union_tag_invalid":
        tag, expected = str(error["ctx"]["tag"]), str(error["ctx"]["expected_tags"])
        suggestion = did_you_mean(tag, [t.strip(" '") for t in expected.split(",")])
        shown = tag if len(tag) <= 60 else tag[:57] + "..."
        lead = f"{suggestion} Use" if suggestion else ": use"
        return f"unknown instruction kind {shown!r}{lead} one of {expected}"
    message = str(error["msg"])
    if kind_of_error == "value_error":  # our own validators' messages, without pydantic's prefix
        message = str(error["ctx"]["error"])
    value = error.get("input")
    if isinstance(value, str) and _USERINFO.match(value):
        return message  # an address with a user name or password: never repeated where others read
    if isinstance(value, str | int | float | bool) or value is None:
        message += f" (got {json.dumps(value)})"
    return message


def _properties_at(model: type[BaseModel], loc: tuple[str | int, ...]) -> list[str]:
    """The property names of the object at pydantic error location `loc` in a `model` document
    (none when the location cannot be followed): the names an unknown property may be a typo of."""
    current: Any = model
    for item in loc:
        current = _step(current, item)
        if current is None:
            return []
    options = [m for m in _members(current) if isinstance(m, type) and issubclass(m, BaseModel)]
    return [f.alias or n for m in options for n, f in m.model_fields.items()]


def _step(annotation: Any, item: str | int) -> Any:
    """The type one step into `annotation` along a pydantic location item, or None."""
    for member in _members(annotation):
        origin = get_origin(member)
        if isinstance(item, int) and origin is list:
            return get_args(member)[0]
        if isinstance(item, str) and origin is dict:
            return get_args(member)[1]
        if isinstance(member, type) and issubclass(member, BaseModel) and isinstance(item, str):
            for name, field in member.model_fields.items():
                if item in (name, field.alias):
                    return field.annotation
            kind = member.model_fields.get("kind")
            if kind is not None and item in get_args(kind.annotation):
                return member  # a discriminated union's tag names its member
    return None


def _members(annotation: Any) -> list[Any]:
    """The types an annotation may hold, Annotated and unions unwrapped."""
    if get_origin(annotation) is Annotated:
        return _members(get_args(annotation)[0])
    if get_origin(annotation) in (Union, UnionType):
        return [m for arg in get_args(annotation) for m in _members(arg)]
    if get_origin(annotation) is Literal:
        return []
    return [annotation]


_USERINFO = re.compile(r"^\s*[A-Za-z][A-Za-z0-9+.-]*:/*[^/?#\s]*@")


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "empty"
    return "a scalar"


def main(argv: list[str]) -> int:
    """`python -m reconciler.model.schema DIR`: regenerate the schema files into DIR."""
    target = Path(argv[0]) if argv else Path(__file__).resolve().parents[2] / "schemas"
    for path in write_schemas(target):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
