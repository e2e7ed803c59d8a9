"""Log lines as operators get them: JSON objects a pipeline can index, or readable text."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from reconciler.service import configure_logging


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


@pytest.mark.usefixtures("restore_logging")
def test_json_logs_are_one_object_per_line_with_the_extra_fields() -> None:
    out = io.StringIO()
    configure_logging("json", stream=out)
    logging.getLogger("reconciler.service").warning(
        "reconcile pass failed (%s): %s", "temporary", "remote down", extra={"consecutive_failures": 3}
    )
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("uvicorn.error").exception("crashed")
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["level"] == "WARNING"
    assert first["logger"] == "reconciler.service"
    assert first["message"] == "reconcile pass failed (temporary): remote down"
    assert first["consecutive_failures"] == 3
    assert first["time"].endswith("+00:00")
    assert second["logger"] == "uvicorn.error"
    assert "RuntimeError: boom" in second["exception"]


@pytest.mark.usefixtures("restore_logging")
def test_json_logs_survive_values_json_cannot_hold() -> None:
    out = io.StringIO()
    configure_logging("json", stream=out)
    logging.getLogger("reconciler").info("odd", extra={"when": object(), "path": b"x"})
    entry = json.loads(out.getvalue())
    assert entry["message"] == "odd"
    assert entry["when"].startswith("<object object")


@pytest.mark.usefixtures("restore_logging")
def test_text_logs_append_fields_after_the_message() -> None:
    out = io.StringIO()
    configure_logging("text", stream=out)
    logging.getLogger("reconciler.service").info("reconcile pass done", extra={"applied": 2})
    line = out.getvalue().strip()
    assert line.endswith("INFO reconciler.service: reconcile pass done applied=2")


@pytest.mark.usefixtures("restore_logging")
def test_debug_lines_are_left_out_at_the_default_level() -> None:
    out = io.StringIO()
    configure_logging("json", stream=out)
    logging.getLogger("reconciler.service").debug("quiet pass")
    assert out.getvalue() == ""


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="use one of text, json"):
        configure_logging("xml")  # type: ignore[arg-type]
