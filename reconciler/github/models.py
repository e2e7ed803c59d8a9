"""Typed views of the GitHub REST objects the reconciler reads, parsed from the JSON.

Each `from_api` reads only the fields the approvals and the reconcile loop use and ignores the
rest, so GitHub adding fields never breaks us; a missing required field raises `GitHubError`
naming the object and the field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

from reconciler.github.errors import GitHubError

# `Co-authored-by: Name <email>` as GitHub documents it. Matched on any line, not only in the
# final trailer block: a looser match can only add co-authors, and co-authors count as
# requesters, so erring this way never lets anyone approve their own change.
CO_AUTHOR_RE = re.compile(
    r"^\s*co-authored-by:\s*(?P<name>[^<]*?)\s*<(?P<email>[^>]+)>\s*$", re.IGNORECASE | re.MULTILINE
)


def _require(obj: Mapping[str, Any], key: str, what: str) -> Any:
    if key not in obj or obj[key] is None:
        raise GitHubError(
            f"GitHub sent a {what} without `{key}`: the API answer is not what "
            f"this version of the reconciler understands"
        )
    return obj[key]


def _login(user: Any) -> str | None:
    """`user.login`, or None for a deleted account ("ghost") or a commit not linked to one."""
    if isinstance(user, Mapping) and isinstance(user.get("login"), str):
        return str(user["login"])
    return None


def parse_time(value: Any) -> datetime | None:
    """GitHub's ISO 8601 timestamps (`2011-01-26T19:01:12Z`) as aware datetimes."""
    if not isinstance(value, str) or not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@dataclass(frozen=True)
class PullRequest:
    number: int
    state: str  # open | closed
    merged: bool
    merged_at: datetime | None
    merge_commit_sha: str | None
    head_sha: str
    base_ref: str
    base_sha: str
    user_login: str | None  # the author
    html_url: str
    title: str
    merged_by: str | None = None  # only in the single-pull-request answer
    changed_files: int | None = None  # GitHub lists at most 3,000 files; compare to this
    created_at: datetime | None = None
    updated_at: datetime | None = None
    default_branch: str | None = None  # the repository's, from `base.repo` when GitHub sends it

    @classmethod
    def from_api(cls, obj: Mapping[str, Any]) -> PullRequest:
        what = "pull request"
        head = _require(obj, "head", what)
        base = _require(obj, "base", what)
        merged_at = parse_time(obj.get("merged_at"))
        base_repo = base.get("repo")
        default_branch = base_repo.get("default_branch") if isinstance(base_repo, Mapping) else None
        # The commit-pulls listing omits `merged`; there a merge time means merged.
        merged = bool(obj["merged"]) if "merged" in obj else merged_at is not None
        return cls(
            number=int(_require(obj, "number", what)),
            state=str(_require(obj, "state", what)),
            merged=merged,
            merged_at=merged_at,
            # absent from API version 2026-03-10 on; the client pins 2022-11-28 (see http.py)
            merge_commit_sha=obj.get("merge_commit_sha"),
            head_sha=str(_require(head, "sha", "pull request head")),
            base_ref=str(_require(base, "ref", "pull request base")),
            base_sha=str(_require(base, "sha", "pull request base")),
            user_login=_login(obj.get("user")),
            html_url=str(obj.get("html_url", "")),
            title=str(obj.get("title", "")),
            merged_by=_login(obj.get("merged_by")),
            changed_files=obj.get("changed_files"),
            created_at=parse_time(obj.get("created_at")),
            updated_at=parse_time(obj.get("updated_at")),
            default_branch=default_branch if isinstance(default_branch, str) else None,
        )


@dataclass(frozen=True)
class PullFile:
    filename: str
    status: str  # added | removed | modified | renamed | copied | changed | unchanged
    previous_filename: str | None
    sha: str | None  # the blob sha at the head; None for a removed file on some servers

    @classmethod
    def from_api(cls, obj: Mapping[str, Any]) -> PullFile:
        return cls(
            filename=str(_require(obj, "filename", "pull request file")),
            status=str(_require(obj, "status", "pull request file")),
            previous_filename=obj.get("previous_filename"),
            sha=obj.get("sha"),
        )


@dataclass(frozen=True)
class CoAuthor:
    name: str
    email: str


def parse_co_authors(message: str) -> tuple[CoAuthor, ...]:
    """Every `Co-authored-by:` trailer of a commit message, in order, without duplicates."""
    seen: dict[str, CoAuthor] = {}
    for match in CO_AUTHOR_RE.finditer(message):
        email = match["email"].strip()
        seen.setdefault(email.lower(), CoAuthor(name=match["name"].strip(), email=email))
    return tuple(seen.values())


@dataclass(frozen=True)
class PullCommit:
    sha: str
    message: str
    author_login: str | None  # the GitHub account linked to the author email, if any
    author_name: str | None
    author_email: str | None
    committer_login: str | None
    committer_email: str | None
    co_authors: tuple[CoAuthor, ...] = ()

    @classmethod
    def from_api(cls, obj: Mapping[str, Any]) -> PullCommit:
        commit = _require(obj, "commit", "pull request commit")
        git_author = commit.get("author") or {}
        git_committer = commit.get("committer") or {}
        message = str(commit.get("message", ""))
        return cls(
            sha=str(_require(obj, "sha", "pull request commit")),
            message=message,
            author_login=_login(obj.get("author")),
            author_name=git_author.get("name"),
            author_email=git_author.get("email"),
            committer_login=_login(obj.get("committer")),
            committer_email=git_committer.get("email"),
            co_authors=parse_co_authors(message),
        )


@dataclass(frozen=True)
class Review:
    id: int
    user_login: str | None  # None when the reviewer's account was deleted
    state: str  # APPROVED | CHANGES_REQUESTED | COMMENTED | DISMISSED | PENDING
    commit_id: str | None
    submitted_at: datetime | None  # None while PENDING
    body: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_api(cls, obj: Mapping[str, Any]) -> Review:
        return cls(
            id=int(_require(obj, "id", "review")),
            user_login=_login(obj.get("user")),
            state=str(_require(obj, "state", "review")).upper(),
            commit_id=obj.get("commit_id"),
            submitted_at=parse_time(obj.get("submitted_at")),
            body=str(obj.get("body") or ""),
            raw=MappingProxyType(dict(obj)),
        )


@dataclass(frozen=True)
class CommitStatus:
    id: int
    state: str
    context: str
    description: str | None
    target_url: str | None

    @classmethod
    def from_api(cls, obj: Mapping[str, Any]) -> CommitStatus:
        return cls(
            id=int(_require(obj, "id", "commit status")),
            state=str(_require(obj, "state", "commit status")),
            context=str(obj.get("context", "")),
            description=obj.get("description"),
            target_url=obj.get("target_url"),
        )


@dataclass(frozen=True)
class IssueComment:
    id: int
    body: str
    user_login: str | None
    html_url: str

    @classmethod
    def from_api(cls, obj: Mapping[str, Any]) -> IssueComment:
        return cls(
            id=int(_require(obj, "id", "comment")),
            body=str(obj.get("body") or ""),
            user_login=_login(obj.get("user")),
            html_url=str(obj.get("html_url", "")),
        )
