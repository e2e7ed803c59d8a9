"""Schemathesis against /openapi.json: generated requests never cause a 5xx, and every
response matches the documented schema. Bounded to a few examples per operation."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.core.result import Ok
from schemathesis.generation.case import Case

from tests.support.apiseed import Tokens

BOUNDED = settings(
    max_examples=4,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.generate],
)


@pytest.mark.slow
def test_reads_match_the_schema_and_never_fail(app: FastAPI, tokens: Tokens) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    headers = {"Authorization": f"Bearer {tokens.full}"}
    checked = []
    for result in schema.include(method="GET").get_all_operations():
        assert isinstance(result, Ok), result
        operation = result.ok()

        @given(case=operation.as_strategy())
        @BOUNDED
        def conforms(case: Case[Any]) -> None:
            case.call_and_validate(headers=headers)

        conforms()
        checked.append(operation.label)
    assert len(checked) >= 20
