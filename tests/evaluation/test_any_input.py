"""Whatever JSON a caller sends as properties, groups or ids, evaluation answers: it never raises."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.evaluation import Context, Evaluator
from tests.support.flagsample import GROUP_TYPES, sample_flags

EVALUATOR = Evaluator(sample_flags(60, seed=5), GROUP_TYPES)
KEYS = st.sampled_from(["email", "plan", "beta", "age", "score", "signup", "distinct_id", "other"])
JSON: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(
    distinct_id=st.text(min_size=1, max_size=40),
    person=st.dictionaries(KEYS, JSON, max_size=8),
    group_key=st.text(min_size=1, max_size=10),
    group=st.dictionaries(KEYS, JSON, max_size=8),
)
def test_evaluation_answers_every_flag_for_any_json(
    distinct_id: str, person: dict[str, Any], group_key: str, group: dict[str, Any]
) -> None:
    context = Context(distinct_id, person, {"company": group_key}, {"company": group})
    results = EVALUATOR.evaluate_all(context)
    assert set(results) == set(EVALUATOR.keys)
    assert all(isinstance(r.value, bool | str) for r in results.values())
