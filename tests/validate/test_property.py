"""Property: no input makes the validator crash. Arbitrary bytes and arbitrary documents in
any file of a repository give exit 0 or 1 with findings, never a traceback (exit 3)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.cli import main
from reconciler.model.states import FLAG_ACTIONS

BASE = Path(__file__).resolve().parents[1] / "fixtures" / "repos" / "base"
TARGETS = ["changes/2026/ramp.yaml", "policies/production-update.yaml", "members.yaml", "reconciler.yaml"]
SETTINGS = settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(),
    st.text(max_size=12),
    st.sampled_from(["production", "staging", "qa", *FLAG_ACTIONS, "turnFlagOn", "updateRollout", "alice"]),
)
json_like = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(["kind", "spec", "name", "group", "percentage", "variants", "x"])
            | st.text(max_size=6),
            inner,
            max_size=4,
        )
    ),
    max_leaves=20,
)
instruction = st.fixed_dictionaries(
    {"kind": st.sampled_from(["turnFlagOn", "updateRollout", "updateVariants", "addGroup", "bogus"])},
    optional={"group": json_like, "percentage": json_like, "variants": json_like, "properties": json_like},
)
change_request = st.fixed_dictionaries(
    {
        "apiVersion": st.sampled_from(["reconciler/v1", "v2"]),
        "kind": st.sampled_from(["ChangeRequest", "ApprovalPolicy"]),
        "metadata": st.fixed_dictionaries({"name": st.sampled_from(["ramp", "kill", "Bad Name", "x"])}),
        "spec": st.fixed_dictionaries(
            {
                "action_key": st.sampled_from([*FLAG_ACTIONS, "nope"]),
                "resource_id": st.sampled_from(["checkout", "", "a b"]),
                "environment": st.sampled_from(["production", "staging", "qa"]),
            },
            optional={
                "instructions": st.lists(instruction, max_size=3),
                "source_environment": st.sampled_from(["production", "staging", "qa"]),
                "flag": json_like,
                "base_version": json_like,
            },
        ),
    }
)


def validate_with(tmp_path: Path, target: str, content: bytes) -> int:
    repo = tmp_path / "repo"
    if not repo.exists():
        shutil.copytree(BASE, repo)
    (repo / target).write_bytes(content)
    try:
        result = CliRunner().invoke(main, ["validate", str(repo), "--format", "json"])
    finally:
        if (BASE / target).exists():
            shutil.copyfile(BASE / target, repo / target)
        else:
            (repo / target).unlink()
    assert result.exit_code in (0, 1), result.output
    return result.exit_code


@SETTINGS
@given(target=st.sampled_from(TARGETS), content=st.binary(max_size=200))
def test_arbitrary_bytes_never_crash(tmp_path: Path, target: str, content: bytes) -> None:
    validate_with(tmp_path, target, content)


@SETTINGS
@given(target=st.sampled_from(TARGETS), document=json_like)
def test_arbitrary_yaml_documents_never_crash(tmp_path: Path, target: str, document: Any) -> None:
    validate_with(tmp_path, target, yaml.safe_dump(document, allow_unicode=True).encode())


@SETTINGS
@given(document=change_request)
def test_arbitrary_change_requests_never_crash(tmp_path: Path, document: Any) -> None:
    validate_with(tmp_path, "changes/2026/fuzzed.yaml", yaml.safe_dump(document).encode())
