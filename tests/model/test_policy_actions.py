"""`action_key` takes one action or a list of them: the model and the shipped schema agree."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from pydantic import ValidationError

from reconciler.model.documents import ApprovalPolicy
from reconciler.model.schema import schema_for


def document(action_key: Any) -> dict[str, Any]:
    return {
        "apiVersion": "reconciler/v1",
        "kind": "ApprovalPolicy",
        "metadata": {"name": "staging-flags"},
        "spec": {"action_key": action_key, "approver_config": {"quorum": 1, "roles": ["release-managers"]}},
    }


def schema_accepts(doc: dict[str, Any]) -> bool:
    return jsonschema.Draft202012Validator(schema_for("ApprovalPolicy")).is_valid(doc)


@pytest.mark.parametrize(
    ("action_key", "actions"),
    [
        ("feature_flag.update", ("feature_flag.update",)),
        (["feature_flag.update"], ("feature_flag.update",)),
        (["feature_flag.create", "members.change"], ("feature_flag.create", "members.change")),
    ],
)
def test_one_action_or_a_list(action_key: Any, actions: tuple[str, ...]) -> None:
    doc = document(action_key)
    assert ApprovalPolicy.model_validate(doc).spec.actions == actions
    assert schema_accepts(doc)


@pytest.mark.parametrize(
    "action_key",
    [
        [],
        ["feature_flag.update", "feature_flag.update"],
        ["feature_flag.update", "feature_flag.launch"],
        [["feature_flag.update"]],
        "feature_flag.update,feature_flag.enable",
        None,
    ],
)
def test_empty_repeated_or_unknown_actions_are_refused_by_model_and_schema(action_key: Any) -> None:
    doc = document(action_key)
    with pytest.raises(ValidationError):
        ApprovalPolicy.model_validate(doc)
    assert not schema_accepts(doc)


def test_a_repeated_action_is_named() -> None:
    with pytest.raises(ValidationError, match=r"feature_flag\.update is listed more than once"):
        ApprovalPolicy.model_validate(
            document(["feature_flag.update", "feature_flag.enable", "feature_flag.update"])
        )
