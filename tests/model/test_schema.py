"""The JSON Schemas: generated from the models, checked in, shipped, and in agreement with
the validator that `reconciler validate` runs."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from reconciler.model.schema import (
    KINDS,
    SCHEMA_FILES,
    schema_for,
    schema_text,
    shipped_schema_dir,
    validate_document,
)

ROOT = Path(__file__).resolve().parents[2]
CHECKED_IN = ROOT / "schemas"


@pytest.mark.parametrize("kind", KINDS)
def test_checked_in_schema_equals_the_generated_one(kind: str) -> None:
    on_disk = (CHECKED_IN / SCHEMA_FILES[kind]).read_text(encoding="utf-8")
    assert on_disk == schema_text(kind), "run `python -m reconciler.model.schema` and commit schemas/"


@pytest.mark.parametrize("kind", KINDS)
def test_schema_is_draft_2020_12_with_an_id(kind: str) -> None:
    schema = schema_for(kind)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].startswith("urn:reconciler:schema:v1:")
    jsonschema.Draft202012Validator.check_schema(schema)


def object_schemas(schema: Any, where: str = "#") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every subschema that declares properties, with where it is."""
    if isinstance(schema, dict):
        if isinstance(schema.get("properties"), dict) and schema.get("type") == "object":
            yield where, schema
        for key, value in schema.items():
            if key == "properties" and isinstance(value, dict):
                for name, sub in value.items():
                    yield from object_schemas(sub, f"{where}/properties/{name}")
            elif key != "properties":
                yield from object_schemas(value, f"{where}/{key}")
    elif isinstance(schema, list):
        for i, value in enumerate(schema):
            yield from object_schemas(value, f"{where}/{i}")


@pytest.mark.parametrize("kind", KINDS)
def test_every_property_is_described_and_every_object_closed(kind: str) -> None:
    objects = list(object_schemas(schema_for(kind)))
    assert objects
    for where, obj in objects:
        assert obj.get("additionalProperties") is False, where
        for name, prop in obj["properties"].items():
            assert prop.get("description"), f"{where}/properties/{name} has no description"


def test_instructions_are_a_one_of_discriminated_by_kind() -> None:
    schema = schema_for("ChangeRequest")
    items = schema["$defs"]["ChangeRequestSpec"]["properties"]["instructions"]["items"]
    assert items["discriminator"]["propertyName"] == "kind"
    assert len(items["oneOf"]) == len(items["discriminator"]["mapping"]) == 12


def test_schemas_are_found_from_a_checkout() -> None:
    assert shipped_schema_dir() == CHECKED_IN


def documents(root: Path) -> Iterator[tuple[str, Any]]:
    kinds = {"reconciler.yaml": "Project", "members.yaml": "Members"}
    for path in sorted(root.rglob("*.yaml")):
        rel = path.relative_to(root).as_posix()
        kind = kinds.get(rel) or ("ApprovalPolicy" if rel.startswith("policies/") else "ChangeRequest")
        yield kind, yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("kind_and_doc", list(documents(ROOT / "examples" / "policies")), ids=lambda d: d[0])
def test_json_schema_and_validator_accept_the_examples(kind_and_doc: tuple[str, Any]) -> None:
    kind, doc = kind_and_doc
    jsonschema.Draft202012Validator(schema_for(kind)).validate(doc)
    model, issues = validate_document(doc, kind)
    assert model is not None and issues == []


REJECTED = [
    ("ApprovalPolicy", "/spec/approver_config", {"quorom": 1}),
    ("ApprovalPolicy", "/spec/approver_config/quorum", 0),
    ("ApprovalPolicy", "/spec/expires_after", "two weeks"),
    ("ChangeRequest", "/spec/instructions", [{"kind": "updateRollout", "group": 0, "percentage": 101}]),
    ("ChangeRequest", "/spec/instructions", [{"kind": "nope"}]),
    ("ChangeRequest", "/spec/environment", "Production!"),
    ("ChangeRequest", "/spec/base_version", "3"),
    ("ChangeRequest", "/spec/action_key", "feature_flag.rename"),
    ("Members", "/spec/members", [{"login": "x", "email": "x@example.com", "level": 3}]),
    ("Project", "/spec/environments", []),
]


def with_value(doc: Any, pointer: str, value: Any) -> Any:
    doc = json.loads(json.dumps(doc))
    *parents, last = pointer.strip("/").split("/")
    target = doc
    for part in parents:
        target = target[part]
    target[last] = value
    return doc


@pytest.mark.parametrize(("kind", "pointer", "value"), REJECTED)
def test_json_schema_and_validator_reject_the_same_mistakes(kind: str, pointer: str, value: Any) -> None:
    valid = next(doc for k, doc in documents(ROOT / "examples" / "policies") if k == kind)
    doc = with_value(valid, pointer, value)
    assert not jsonschema.Draft202012Validator(schema_for(kind)).is_valid(doc)
    model, issues = validate_document(doc, kind)
    assert model is None and issues
    assert all(issue.pointer.startswith(pointer) for issue in issues), issues


@pytest.mark.slow
def test_installed_wheel_ships_the_schemas_and_works_outside_a_checkout(tmp_path: Path) -> None:
    wheels, site, elsewhere = tmp_path / "wheels", tmp_path / "site", tmp_path / "elsewhere"
    pip = [sys.executable, "-m", "pip", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "-w", str(wheels), str(ROOT)], check=True)
    (wheel,) = wheels.glob("flag_reconciler-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    # The registry's `reconciler` is another project: the distribution is `flag-reconciler`,
    # the import package and the command keep the name `reconciler`.
    info = wheel.name.split("-")[0] + "-" + wheel.name.split("-")[1] + ".dist-info"
    metadata = zipfile.ZipFile(wheel).read(f"{info}/METADATA").decode()
    assert "\nName: flag-reconciler\n" in metadata
    entry_points = zipfile.ZipFile(wheel).read(f"{info}/entry_points.txt").decode()
    assert "reconciler = reconciler.cli:main" in entry_points
    assert {f"reconciler/schemas/{name}" for name in SCHEMA_FILES.values()} <= names
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], check=True)
    elsewhere.mkdir()
    code = "from reconciler.model.schema import shipped_schema_dir as d; print(d())"
    env = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}
    where = subprocess.run(
        [sys.executable, "-c", code], cwd=elsewhere, env=env, capture_output=True, text=True, check=True
    )
    assert Path(where.stdout.strip()) == site / "reconciler" / "schemas"
    printed = subprocess.run(
        [sys.executable, "-m", "reconciler", "schema", "ChangeRequest"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert printed.stdout == (site / "reconciler" / "schemas" / SCHEMA_FILES["ChangeRequest"]).read_text()
