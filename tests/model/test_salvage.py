"""Salvaging an invalid document: the sound rest validates, pointers lead back to the document."""

from __future__ import annotations

from typing import Any

from reconciler.model.documents import ChangeRequest
from reconciler.model.salvage import salvage


def change(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "reconciler/v1",
        "kind": "ChangeRequest",
        "metadata": {"name": "ramp"},
        "spec": {"action_key": "feature_flag.update", "resource_id": "checkout", "environment": "qa", **spec},
    }


def test_failing_list_items_go_and_pointers_lead_back_to_the_written_index() -> None:
    data = change(
        instructions=[
            {"kind": "updateRolout"},
            {"kind": "updateRollout", "group": 0, "percentage": 20},
            {"kind": "updateRollout", "group": 0, "percentage": 500},
            {"kind": "updateRollout", "group": 1, "percentage": 30},
        ],
        enviroment="typo",
    )
    rest = salvage(data, "ChangeRequest")
    assert rest is not None and isinstance(rest.model, ChangeRequest)
    assert [i.percentage for i in rest.model.spec.instructions] == [20, 30]  # type: ignore[union-attr]
    assert rest.model.spec.environment == "qa"
    assert rest.original_pointer("/spec/instructions/1/group") == "/spec/instructions/3/group"
    assert rest.original_pointer("/spec/instructions/0") == "/spec/instructions/1"
    assert rest.original_pointer("/spec/environment") == "/spec/environment"
    assert rest.plain is data


def test_a_failing_required_value_takes_its_object_with_it() -> None:
    bad_key = change(resource_id="NOT A KEY")
    assert salvage(bad_key, "ChangeRequest") is None  # spec cannot stand, and the document needs it
    members = {
        "apiVersion": "reconciler/v1",
        "kind": "Members",
        "metadata": {"name": "people"},
        "spec": {"members": [{"login": "alice", "email": "nope"}, {"login": "bob", "email": "b@x.io"}]},
    }
    rest = salvage(members, "Members")
    assert rest is not None
    assert [m.login for m in rest.model.spec.members] == ["bob"]  # type: ignore[attr-defined]


def test_nothing_is_salvaged_from_what_is_not_a_document_of_the_kind() -> None:
    assert salvage([1, 2], "ChangeRequest") is None
    assert salvage({"kind": "Members"}, "ChangeRequest") is None
    assert salvage({**change(), "kind": "Project"}, "ChangeRequest") is None


def test_thousands_of_unknown_properties_take_one_round() -> None:
    data = change(instructions=[{"kind": "turnFlagOn"}])
    data["spec"].update({f"junk{i}": i for i in range(5000)})
    rest = salvage(data, "ChangeRequest")
    assert rest is not None and rest.model.spec.environment == "qa"  # type: ignore[attr-defined]


def test_a_missing_required_property_deep_down_takes_only_its_own_item() -> None:
    data = change(instructions=[{"kind": "updateRollout", "group": 0}, {"kind": "turnFlagOn"}])
    rest = salvage(data, "ChangeRequest")
    assert rest is not None
    assert [i.kind for i in rest.model.spec.instructions] == ["turnFlagOn"]  # type: ignore[attr-defined]
    assert rest.original_pointer("/spec/instructions/0") == "/spec/instructions/1"
