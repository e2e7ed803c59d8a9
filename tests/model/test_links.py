"""The dashboard's address: only a plain http(s) address is taken, and a refusal never repeats a
password; the page of a pull request there."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from reconciler.model.documents import Project
from reconciler.model.links import check_dashboard_url, pull_request_page
from reconciler.model.schema import validate_document
from tests.support.policyrepo import project


def with_address(address: Any) -> dict[str, Any]:
    doc = copy.deepcopy(project("github"))
    doc["spec"]["dashboard_url"] = address
    return doc


@pytest.mark.parametrize(
    ("address", "kept"),
    [
        ("https://flags.example.com", "https://flags.example.com"),
        ("https://flags.example.com/", "https://flags.example.com"),
        ("http://localhost:8000/reconciler/", "http://localhost:8000/reconciler"),
        ("https://[::1]:8443", "https://[::1]:8443"),
    ],
)
def test_a_plain_web_address_is_taken_without_its_trailing_slash(address: str, kept: str) -> None:
    model, issues = validate_document(with_address(address), "Project")
    assert issues == [] and isinstance(model, Project)
    assert model.spec.dashboard_url == kept
    assert pull_request_page(kept, 7) == f"{kept}/ui/pulls/7"


@pytest.mark.parametrize(
    ("address", "says"),
    [
        ("javascript:alert(1)", "starts with https://"),
        ("JAVASCRIPT://flags.example.com/%0aalert(1)", "starts with https://"),
        ("data:text/html;base64,PHNjcmlwdD4=", "starts with https://"),
        ("//flags.example.com", "starts with https://"),
        ("ftp://flags.example.com", "starts with https://"),
        ("https://flags.example.com?x=1", "no query"),
        ("https://flags.example.com/#top", "no query"),
        ("https:///ui", "names a host"),
        ("https://flags.example.com:99999", "valid port"),
        ("https://flags.example.com/a b", "no spaces"),
        ("https://flags.example.com/\x1b[2J", "control characters"),
        ("https://flags.example.com\\@evil.example", "backslashes"),
        ("https://flags.example.com/@evil", "no @"),
        ("https://" + "a" * 2000 + ".com", "at most 2000"),
    ],
)
def test_anything_else_is_refused_saying_why(address: str, says: str) -> None:
    model, issues = validate_document(with_address(address), "Project")
    assert model is None
    [issue] = issues
    assert issue.pointer == "/spec/dashboard_url" and says in issue.message


@pytest.mark.parametrize(
    "address", ["https://admin:hunter2@flags.example.com", "https://hunter2@flags.example.com/x"]
)
def test_credentials_are_refused_and_never_repeated(address: str) -> None:
    model, [issue] = validate_document(with_address(address), "Project")
    assert model is None
    assert "no user name or password" in issue.message and "hunter2" not in issue.message
    with pytest.raises(ValueError, match="no user name or password") as raised:
        check_dashboard_url(address)
    assert "hunter2" not in str(raised.value)


def test_the_address_is_optional_and_not_text_is_refused() -> None:
    doc = copy.deepcopy(project("github"))
    model, issues = validate_document(doc, "Project")
    assert isinstance(model, Project) and model.spec.dashboard_url is None and issues == []
    assert validate_document(with_address(5), "Project")[0] is None
