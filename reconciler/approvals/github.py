"""The GitHub approval source: pull-request reviews, as they stood when the change merged.

`GitHubSource` is what the reconcile pass asks (`approvals.source: github`) for the votes,
requesters and merger of each file a landing commit brings to the tracked branch; the pass
builds one per run. `pull_request_context` answers the same question for an open pull request,
so a change is judged by one rule before and after it merges.

GitHub says who reviewed what and who merged; local git says what the reviewed commits
contained. An approval is stale when the change-request file at the reviewed commit differs
from the file being judged. Commits that a squash or rebase merge left off every branch are
fetched once from `refs/pull/N/head`; a commit that still cannot be read makes its approval
stale, and the vote says why. Every GitHub listing is read once per pull request per pass,
so a pull request with fifty change requests costs no more requests than one with a single file.
GitHub failures propagate as the client's typed errors: the pass then applies nothing and the
loop retries the temporary ones.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from reconciler.approvals.base import ApprovalContext, MemberIndex, PullRequestRef
from reconciler.github import GitHubClient, PullCommit, PullRequest, Review
from reconciler.gitrepo.repository import CommitInfo, GitRepository
from reconciler.model.documents import Members
from reconciler.policy.votes import Vote, co_author_emails, requesters, votes_from_reviews

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PullSnapshot:
    """One pull request as read from GitHub once: the pull request, its reviews and commits.

    `missing` holds the commits (head or reviewed) this clone could not read even after
    fetching `refs/pull/N/head`.
    """

    pull: PullRequest
    reviews: tuple[Review, ...]
    commits: tuple[PullCommit, ...]
    missing: frozenset[str] = frozenset()
    # the pull request's own commits with the files each changed, per starting point: one git
    # run serves every file of the pull request
    _history: dict[str | None, list[CommitInfo]] = field(default_factory=dict, compare=False, repr=False)
    # blob ids of every file per commit: one git run per commit, whatever the number of files
    _trees: dict[str, dict[str, str]] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def read(cls, client: GitHubClient, repo: GitRepository, pull: PullRequest) -> PullSnapshot:
        """Reviews and commits of `pull` (one request per page of each), made readable locally."""
        reviews = tuple(client.list_reviews(pull.number))
        commits = tuple(client.list_pull_commits(pull.number))
        wanted = {pull.head_sha, *(r.commit_id for r in reviews if r.commit_id)}
        return cls(pull, reviews, commits, _fetch_missing(repo, pull.number, wanted))

    def commits_touching(self, repo: GitRepository, exclude: str | None, path: str) -> list[CommitInfo]:
        """The pull request's commits (after `exclude`) that changed `path`, from local git."""
        if exclude not in self._history:
            self._history[exclude] = repo.file_history(self.pull.head_sha, exclude)
        return [c for c in self._history[exclude] if any(path in (ch.path, ch.old_path) for ch in c.changes)]

    def blob(self, repo: GitRepository, commit: str, path: str) -> str | None:
        """The blob id of `path` at `commit` (None when the file is absent there)."""
        if commit not in self._trees:
            self._trees[commit] = repo.blob_ids(commit)
        return self._trees[commit].get(path)

    @property
    def ref(self) -> PullRequestRef:
        return PullRequestRef(self.pull.number, self.pull.html_url)

    def review_objects(self, until: datetime | None) -> list[Mapping[str, Any]]:
        """The reviews submitted by `until` (all when None), oldest first, as GitHub sent them."""
        return [
            r.raw for r in self.reviews
            if until is None or (r.submitted_at is not None and r.submitted_at <= until)
        ]  # fmt: skip


def _fetch_missing(repo: GitRepository, number: int, shas: set[str]) -> frozenset[str]:
    missing = {sha for sha in shas if not repo.has_commit(sha)}
    if missing and repo.fetch_pull_head(number):
        missing = {sha for sha in missing if not repo.has_commit(sha)}
    if missing:
        log.warning("pull request #%d: commits %s cannot be read in %s even after fetching refs/pull/%d/head",
                    number, ", ".join(sorted(s[:12] for s in missing)), repo.describe(), number)  # fmt: skip
    return frozenset(missing)


def pull_request_context(
    repo: GitRepository,
    snapshot: PullSnapshot,
    path: str,
    members: Members,
    *,
    target: str,
    exclude: str | None,
    until: datetime | None,
    fallback_created: datetime,
    merger: str | None = None,
) -> ApprovalContext:
    """The votes, requesters and creation time of change-request file `path` in a pull request.

    `target` is the commit whose version of the file is judged (the landing commit at merge,
    the head of an open pull request); `exclude` the commit the pull request's own history
    starts after (the tracked branch before it); `until` ignores reviews submitted later (the
    merge time). `merger` is the member who merged, or None while the pull request is open.
    The request was created when the pull request was opened (`fallback_created` if GitHub
    did not say).
    """
    current = snapshot.blob(repo, target, path)

    def changed_since(commit_id: str) -> bool:
        return commit_id in snapshot.missing or snapshot.blob(repo, commit_id, path) != current

    votes = votes_from_reviews(snapshot.review_objects(until), file_changed_since=changed_since)
    return ApprovalContext(
        votes=tuple(_explain_unreadable(v, snapshot.missing) for v in votes),
        requesters=frozenset(_requesters(repo, snapshot, path, MemberIndex(members), exclude)),
        merger=merger,
        created_at=snapshot.pull.created_at or fallback_created,
        pull_request=snapshot.ref,
    )


def _explain_unreadable(vote: Vote, missing: frozenset[str]) -> Vote:
    if not vote.stale or vote.commit_id not in missing:
        return vote
    note = (f"[treated as stale: the reviewed commit {vote.commit_id[:12]} cannot be read from the "
            f"repository, even after fetching the pull request's head]")  # fmt: skip
    return replace(vote, reason=f"{vote.reason}\n\n{note}".strip())


def _requesters(repo: GitRepository, snapshot: PullSnapshot, path: str, index: MemberIndex, exclude: str | None) -> set[str]:
    """The pull request's author and every author or co-author of a commit of it that touched `path`.

    Local git says which commits touched the file; when the head cannot be read, every commit
    of the pull request counts (more requesters can only make self-approval harder).
    """
    by_sha = {c.sha: c for c in snapshot.commits}
    people: list[str | None] = [index.login_for(snapshot.pull.user_login) or snapshot.pull.user_login]
    if snapshot.pull.head_sha in snapshot.missing:
        for pull_commit in snapshot.commits:
            people.append(_api_author(pull_commit, index))
            people += [index.login_for(a.email) or a.email for a in pull_commit.co_authors]
        return requesters(None, people)
    for commit in snapshot.commits_touching(repo, exclude, path):
        api = by_sha.get(commit.sha)
        people.append(_api_author(api, index) if api and api.author_login else index.person(commit.author_name, commit.author_email))
        people += [index.login_for(email) or email for email in co_author_emails(commit.message)]
    return requesters(None, people)


def _api_author(commit: PullCommit, index: MemberIndex) -> str | None:
    return index.login_for(commit.author_login, commit.author_email) or commit.author_login or commit.author_email


class GitHubSource:
    """Approvals from the reviews of the pull request that brought a landing commit.

    One instance serves one reconcile pass: the pull request of each landing commit and each
    pull request's reviews and commits are read once and reused for every file.
    """

    def __init__(self, repo: GitRepository, client: GitHubClient):
        self.repo = repo
        self.client = client
        self._pull_of: dict[str, int | None] = {}
        self._snapshots: dict[int, PullSnapshot] = {}

    def context(self, landing: CommitInfo, path: str, members: Members) -> ApprovalContext:
        snapshot = self.snapshot_for(landing)
        if snapshot is None:
            return self._direct_push(landing, path, members)
        index = MemberIndex(members)
        merged_by = snapshot.pull.merged_by
        merger = (index.login_for(merged_by) or merged_by) if merged_by else \
            index.person(landing.committer_name, landing.committer_email)  # fmt: skip
        return pull_request_context(
            self.repo, snapshot, path, members, target=landing.sha, exclude=landing.parent,
            until=snapshot.pull.merged_at, fallback_created=landing.authored_at, merger=merger,
        )  # fmt: skip

    def same_change(self, landing: CommitInfo, later: CommitInfo) -> bool:
        """Both commits came from one merged pull request (a rebase merge lands several)."""
        first = self.snapshot_for(landing)
        return first is not None and first is self.snapshot_for(later)

    def snapshot_for(self, landing: CommitInfo) -> PullSnapshot | None:
        """The merged pull request `landing` came from, read once per pass; None for a direct push."""
        if landing.sha not in self._pull_of:
            pull = self._merged_pull(landing.sha)
            self._pull_of[landing.sha] = pull.number if pull else None
            if pull is not None and pull.number not in self._snapshots:
                full = self.client.get_pull(pull.number)  # the commit listing has no merged_by
                self._snapshots[pull.number] = PullSnapshot.read(self.client, self.repo, full)
        number = self._pull_of[landing.sha]
        return None if number is None else self._snapshots[number]

    def _merged_pull(self, sha: str) -> PullRequest | None:
        """The merged pull request that landed `sha`: the one whose merge commit it is, else the
        one into the tracked branch merged first (each commit of a rebase merge maps to it)."""
        merged = [p for p in self.client.pulls_for_commit(sha) if p.merged_at is not None]
        exact = [p for p in merged if p.merge_commit_sha == sha]
        into_branch = [p for p in merged if self.repo.branch is None or p.base_ref == self.repo.branch]
        candidates = exact or into_branch or merged
        return min(candidates, key=lambda p: (p.merged_at, p.number)) if candidates else None

    def _direct_push(self, landing: CommitInfo, path: str, members: Members) -> ApprovalContext:
        """A commit pushed without a pull request: nobody reviewed it, so only a bypass applies it."""
        index = MemberIndex(members)
        added = self.repo.adding_commit(landing, path)
        requester = index.person(added.author_name, added.author_email)
        return ApprovalContext(
            votes=(),
            requesters=frozenset({requester} if requester else set()),
            merger=index.person(landing.committer_name, landing.committer_email),
            created_at=added.authored_at,
        )
