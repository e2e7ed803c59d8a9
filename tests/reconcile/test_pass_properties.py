"""Properties of the reconcile pass on generated files: what validates applies or fails alone.

One policy repository in git and one SQLite store per test; every example lands one generated
file, then a good change (a ramp of the `sentinel` flag to a fresh percentage), and runs a
pass. Whatever the file holds, the pass never raises and the good change applies: no file
wedges the branch. The first property generates documents `validate` accepts; the second
feeds hostile values to `validate` and the pass.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.model.limits import MAX_SAFE_INTEGER, MAX_STORE_INTEGER
from reconciler.model.states import FLAG_ACTIONS
from reconciler.reconcile import ReconcileConfig, reconcile_once
from reconciler.repo.findings import ERROR
from reconciler.repo.sources import DirectorySource
from reconciler.store import Store
from reconciler.store.records import ChangeRequestFilter
from reconciler.validate.pipeline import validate_source
from tests.support import policyrepo as pr
from tests.support.gitutil import GitRepo

SETTINGS = settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
TARGETS = ["target", "other"]
PRODUCTION = 1


@dataclass
class Bench:
    """A bootstrapped repository, its store, and a counter that names each example's files."""

    repo: GitRepo
    store: Store
    examples: int = 0

    def land_and_pass(
        self, path: str, content: dict[str, Any] | str, approvers: tuple[str, ...] = ("bob",)
    ) -> None:
        """Land `content` at `path` and a good ramp after it; the pass must apply the ramp."""
        self.examples += 1
        percentage = self.examples % 99 + 1
        pr.land(self.repo, {path: content}, approvers=approvers)
        good = f"changes/sentinel/{self.examples:04}.yaml"
        pr.land(self.repo, {good: pr.ramp(f"sentinel-{self.examples}", "sentinel", percentage)})
        reconcile_once(ReconcileConfig(repo=str(self.repo.path)), self.store)
        _count, rows = self.store.list_change_requests(ChangeRequestFilter(file=good))
        assert [r.state for r in rows] == ["applied"], f"the good change after {path} did not apply"
        flag = self.store.get_flag(PRODUCTION, "sentinel")
        assert flag is not None and flag.flag.filters.groups[0].rollout_percentage == percentage
        if path.startswith("changes/"):
            _count, rows = self.store.list_change_requests(ChangeRequestFilter(file=path))
            assert [r.state for r in rows] in (["applied"], ["failed"], ["approved"]), rows

    def findings(self, path: str) -> list[str]:
        """`validate`'s errors on `path` as it stands in the work tree (a warning, such as a
        group type no entry names, still passes validation)."""
        found = validate_source(DirectorySource(self.repo.path))
        return [f"{f.pointer}: {f.message}" for f in found if f.path == path and f.severity == ERROR]


@pytest.fixture
def bench(git_repo: GitRepo, tmp_path: Path) -> Iterator[Bench]:
    pr.bootstrap(git_repo)
    pr.land(git_repo, {"changes/sentinel/create.yaml": pr.create_flag("create-sentinel", "sentinel")})
    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    reconcile_once(ReconcileConfig(repo=str(git_repo.path)), store)
    yield Bench(git_repo, store)
    store.close()


# --- documents validate accepts -----------------------------------------------------------------

# Text a valid document may hold: anything but NUL, which the store cannot keep (a finding).
valid_text = partial(st.text, alphabet=st.characters(exclude_characters="\x00"))
safe_ints = st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER) | st.sampled_from(
    [MAX_SAFE_INTEGER, -MAX_SAFE_INTEGER]
)
finite = st.floats(
    allow_nan=False, allow_infinity=False, min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER
)
json_values = st.recursive(
    st.none() | st.booleans() | safe_ints | finite | valid_text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(valid_text(max_size=6), inner, max_size=3),
    max_leaves=12,
)
indexes = st.integers(0, 3) | st.integers(0, MAX_STORE_INTEGER)
percentages = st.floats(0, 100) | st.integers(0, 100)
properties = st.lists(
    st.fixed_dictionaries(
        {"key": st.sampled_from(["email", "plan", "$geoip_country_code"])},
        optional={
            "value": json_values,
            "operator": st.sampled_from(["exact", "is_not", "gt", "regex", "in", "is_set"]),
            "type": st.sampled_from(["person", "group", "cohort"]),
            "group_type_index": indexes,
        },
    ),
    max_size=2,
)
groups = st.lists(
    st.fixed_dictionaries(
        {"properties": properties}, optional={"rollout_percentage": st.none() | percentages}
    ),
    max_size=3,
)
filters = st.fixed_dictionaries(
    {"groups": groups},
    optional={
        "payloads": st.dictionaries(st.just("true"), json_values, max_size=1),
        "aggregation_group_type_index": indexes,
    },
)
update_instructions = st.one_of(
    st.builds(lambda g, p: {"kind": "updateRollout", "group": g, "percentage": p}, indexes, percentages),
    st.builds(
        lambda p, r: {"kind": "addGroup", "properties": p, "rollout_percentage": r}, properties, percentages
    ),
    st.builds(lambda g: {"kind": "removeGroup", "group": g}, indexes),
    st.builds(
        lambda g, p: {"kind": "updateGroupProperties", "group": g, "properties": p}, indexes, properties
    ),
    st.builds(
        lambda v, p: {"kind": "updatePayload", "variant": v, "payload": p},
        st.sampled_from(["true", "a"]),
        json_values,
    ),
    st.builds(lambda n: {"kind": "updateName", "name": n}, valid_text(max_size=10)),
    st.builds(
        lambda t: {"kind": "addTags", "tags": t},
        st.lists(valid_text(min_size=1, max_size=5), min_size=1, max_size=2),
    ),
    st.builds(lambda f: {"kind": "replaceFilters", "filters": f}, filters),
    st.just({"kind": "turnFlagOn"}),
    st.just({"kind": "turnFlagOff"}),
)
offsets = st.integers(-14 * 60, 14 * 60).map(
    lambda m: f"{'-' if m < 0 else '+'}{abs(m) // 60:02}:{abs(m) % 60:02}"
)
execute_at = st.builds(
    lambda day, zone: f"{day.isoformat()}{zone}",
    st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(9998, 12, 31)),
    offsets | st.just("Z"),
)


@st.composite
def valid_changes(draw: st.DrawFn) -> dict[str, Any]:
    action = draw(st.sampled_from(FLAG_ACTIONS))
    key = draw(st.sampled_from(TARGETS))
    spec: dict[str, Any] = {}
    if action == "feature_flag.update":
        spec["instructions"] = draw(st.lists(update_instructions, min_size=1, max_size=3))
    elif action in ("feature_flag.enable", "feature_flag.disable"):
        spec["instructions"] = [{"kind": "turnFlagOn" if action.endswith("enable") else "turnFlagOff"}]
    elif action == "feature_flag.create":
        spec["flag"] = {"key": key, "active": draw(st.booleans()), "filters": draw(filters)}
    environment = draw(st.sampled_from(["production", "staging"]))
    if action == "feature_flag.copy":
        spec["source_environment"] = "staging" if environment == "production" else "production"
    if draw(st.booleans()):
        spec["base_version"] = draw(st.integers(1, 3) | st.integers(1, MAX_STORE_INTEGER))
    if draw(st.integers(0, 3)) == 0:
        spec["execute_at"] = draw(execute_at)
    return pr.change(f"gen-{key}", action, key, environment, **spec)


@SETTINGS
@given(document=valid_changes())
def test_a_change_validate_accepts_never_crashes_the_pass(bench: Bench, document: dict[str, Any]) -> None:
    path = f"changes/generated/{bench.examples:04}.yaml"
    document["metadata"]["name"] = f"generated-{bench.examples}"  # names are unique per kind
    bench.repo.write(path, document)
    assert bench.findings(path) == []
    bench.land_and_pass(path, document)


# --- hostile values ----------------------------------------------------------------------------

huge_ints = st.integers(MAX_SAFE_INTEGER + 1, 2**80) | st.integers(-(2**80), -MAX_SAFE_INTEGER - 1)
hostile_scalars = st.one_of(
    huge_ints,
    st.sampled_from([".nan", ".inf", "-.inf", ".NaN", "2020-01-01T00:00:00", "0001-01-01T00:00:00+14:00"]),
    st.sampled_from(["99999999999999999999w", "3000000d", "0d", "\0", "\ufeff", "\u202e"]),
)


def deep(text: str, levels: int) -> str:
    """`text` (a YAML scalar) nested `levels` deep in alternating mappings and lists."""
    for level in range(levels):
        text = f"[{text}]" if level % 2 else f"{{k: {text}}}"
    return text


def yaml_text(value: Any) -> str:
    """A YAML flow scalar for `value`: the hostile scalars above stay unquoted, so they parse as
    what they spell (NaN, a naive timestamp), and huge integers stay integers."""
    if (isinstance(value, str) and value.startswith((".", "-."))) or isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value[:1].isdigit():
        return value
    return (
        yaml.safe_dump(value, default_flow_style=True, allow_unicode=True).strip().removesuffix("...").strip()
    )


SLOTS = {
    "base_version": "  base_version: {v}\n",
    "execute_at": "  execute_at: {v}\n",
    "group": "  instructions: [{{kind: updateRollout, group: {v}, percentage: 5}}]\n",
    "percentage": "  instructions: [{{kind: updateRollout, group: 0, percentage: {v}}}]\n",
    "payload": "  instructions: [{{kind: updatePayload, variant: 'true', payload: {v}}}]\n",
    "deep payload": "  instructions: [{{kind: updatePayload, variant: 'true', payload: {deep}}}]\n",
    "property value": "  instructions: [{{kind: addGroup, properties: [{{key: plan, value: {v}}}]}}]\n",
    "group type": (
        "  instructions: [{{kind: addGroup,"
        " properties: [{{key: plan, type: group, group_type_index: {v}}}]}}]\n"
    ),
    "name": "  instructions: [{{kind: updateName, name: {v}}}]\n",
}
HEAD = (
    "apiVersion: reconciler/v1\nkind: ChangeRequest\nmetadata: {{name: hostile-{n}}}\nspec:\n"
    "  action_key: feature_flag.update\n  resource_id: target\n  environment: production\n"
)


@SETTINGS
@given(
    slot=st.sampled_from(sorted(SLOTS)),
    value=hostile_scalars,
    levels=st.integers(1, 80),
)
def test_hostile_values_in_a_change_are_reported_and_never_wedge_the_pass(
    bench: Bench, slot: str, value: Any, levels: int
) -> None:
    text = yaml_text(value)
    body = SLOTS[slot].format(v=text, deep=deep(text, levels))
    if slot in ("base_version", "execute_at"):
        body = "  instructions: [{kind: turnFlagOn}]\n" + body
    document = HEAD.format(n=bench.examples) + body
    path = f"changes/hostile/{bench.examples:04}.yaml"
    bench.repo.write(path, document)

    findings = bench.findings(path)

    if _unsafe(value) or (slot in ("base_version", "group", "group type") and isinstance(value, int)):
        assert findings, f"validate accepted {slot}: {text}"
    bench.land_and_pass(path, document)


def _unsafe(value: Any) -> bool:
    return (isinstance(value, int) and abs(value) > MAX_SAFE_INTEGER) or (
        isinstance(value, str) and value.lower().lstrip("-") in (".nan", ".inf")
    )


def hostile_environments() -> st.SearchStrategy[list[dict[str, Any]]]:
    entry = st.fixed_dictionaries(
        {
            "key": st.sampled_from(["production", "staging", "qa"]),
            "id": st.integers(1, 3) | st.integers(-5, 2**70),
            "name": st.sampled_from(["P", "S"]),
            "api_token": st.sampled_from(["phc_production_key", "b", "c", "t" * 201]),
        }
    )
    return st.lists(entry, max_size=3)


@SETTINGS
@given(extra=hostile_environments())
def test_hostile_environments_are_reported_and_never_wedge_the_pass(
    bench: Bench, extra: list[dict[str, Any]]
) -> None:
    # Production stays first, as the sentinel's environment; the generated entries follow it.
    environments = [pr.ENVIRONMENTS[0], *extra]
    project = pr.project()
    project["spec"]["environments"] = environments
    bench.repo.write("reconciler.yaml", project)
    keys, ids, tokens = ([e[f] for e in environments] for f in ("key", "id", "api_token"))
    unusable = (
        len(set(keys)) < len(keys)
        or len(set(ids)) < len(ids)
        or len(set(tokens)) < len(tokens)
        or any(not 1 <= i <= MAX_STORE_INTEGER for i in ids)
        or any(len(t) > 200 for t in tokens)
    )
    assert bool(bench.findings("reconciler.yaml")) == unusable, environments
    bench.land_and_pass("reconciler.yaml", project, approvers=("bob", "erin"))  # policy-changes quorum


@SETTINGS
@given(expiry=st.sampled_from(["99999999999999999999w", "3000000d", "0d", "522w", "3650d", "9" * 5000 + "h"]))
def test_hostile_expiries_are_reported_and_never_wedge_the_pass(bench: Bench, expiry: str) -> None:
    policy = pr.policy("staging-creates", "feature_flag.create", 1, match={"environments": ["staging"]})
    policy["spec"]["expires_after"] = expiry
    bench.repo.write("policies/staging-creates.yaml", policy)
    assert bool(bench.findings("policies/staging-creates.yaml")) == (expiry != "3650d")
    bench.land_and_pass("policies/staging-creates.yaml", policy, approvers=("bob", "erin"))
    create = pr.create_flag(f"create-{bench.examples}", f"staging-{bench.examples}", "staging")
    bench.land_and_pass(f"changes/staging/{bench.examples:04}.yaml", create)
