"""An evaluator remembers its answers per exact context, and never where the clock matters."""

from __future__ import annotations

from typing import Any

from reconciler.evaluation import Context, Evaluator, context_key
from reconciler.evaluation.evaluator import MEMO_ENTRIES
from reconciler.model.flags import Flag


def acme_only(key: str = "acme-only", operator: str = "icontains", value: Any = "@acme.com") -> Flag:
    groups = [{"properties": [{"key": "email", "operator": operator, "value": value}]}]
    return Flag.model_validate({"id": 1, "key": key, "active": True, "filters": {"groups": groups}})


def test_each_context_gets_its_own_answer_not_the_last_one_remembered() -> None:
    evaluator = Evaluator([acme_only()])
    acme, other = Context("u1", {"email": "ada@ACME.com"}), Context("u1", {"email": "ada@example.com"})
    for _ in range(3):  # remembered answers, alternating: each context keeps its own
        assert evaluator.evaluate_all(acme)["acme-only"].enabled is True
        assert evaluator.evaluate_all(other)["acme-only"].enabled is False
        assert evaluator.evaluate_all(Context("u1"))["acme-only"].enabled is False


def test_the_key_tells_apart_every_id_name_value_and_json_type() -> None:
    contexts = [
        Context("u1", {"n": 1}),
        Context("u1", {"n": "1"}),
        Context("u1", {"n": 1.0}),
        Context("u1", {"n": True}),
        Context("u1", {"n": None}),
        Context("u1", {"n": [1]}),
        Context("u1", {"m": 1}),
        Context("u2", {"n": 1}),
        Context("u1", {}, {"n": "1"}),
        Context("u1", {}, {}, {"n": {"n": 1}}),
    ]
    keys = [context_key(c) for c in contexts]
    assert None not in keys and len(set(keys)) == len(contexts)
    assert context_key(Context("u1", {"a": 1, "b": 2})) == context_key(Context("u1", {"b": 2, "a": 1}))


def test_a_context_json_cannot_hold_exactly_is_evaluated_and_not_remembered() -> None:
    evaluator = Evaluator([acme_only()])
    for odd in (Context("u1", {"n": 2**70}), Context("u1", {1: "x"})):  # type: ignore[dict-item]
        assert context_key(odd) is None
        assert evaluator.evaluate_all(odd)["acme-only"].enabled is False


def test_an_answer_changed_by_its_caller_does_not_change_the_next_one() -> None:
    evaluator = Evaluator([acme_only(), acme_only("second")])
    first = evaluator.evaluate_all(Context("u1"))
    first.clear()
    assert set(evaluator.evaluate_all(Context("u1"))) == {"acme-only", "second"}
    assert set(evaluator.evaluate_all(Context("u1"), only=["second"])) == {"second"}


def test_the_memo_is_bounded_and_forgets_the_least_recently_used() -> None:
    evaluator = Evaluator([acme_only()])
    for i in range(MEMO_ENTRIES + 1):
        evaluator.remember(("k", i), lambda i=i: i)  # type: ignore[misc]
    assert evaluator.recall(("k", 0)) is None
    assert evaluator.recall(("k", MEMO_ENTRIES)) == MEMO_ENTRIES
    assert sum(evaluator.recall(("k", i)) is not None for i in range(MEMO_ENTRIES + 1)) == MEMO_ENTRIES


def test_flags_with_date_filters_are_evaluated_every_time() -> None:
    """`-1d` moves with the clock: what was true a moment ago may not be now."""
    evaluator = Evaluator([acme_only("recent", "is_date_after", "-1d")])
    assert evaluator.clock_dependent
    assert evaluator.remember("k", object) is not evaluator.remember("k", object)
    assert evaluator.recall("k") is None
    assert not Evaluator([acme_only()]).clock_dependent
