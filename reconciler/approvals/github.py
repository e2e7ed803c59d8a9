"""The GitHub approval source: pull-request reviews, as they stood when the change merged.

`GitHubSource` (`approvals.source: github`) answers with the votes, requesters and merger of
each file a landing commit brings to the tracked branch; one instance serves one reconcile
pass. `pull_request_context` answers the same question for an open pull request, so a change
is judged by one rule before and after it merges.

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
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from reconciler.approvals.members import MemberIndex
from reconciler.approvals.source import ApprovalContext, PullRequestRef, pushed_context
from reconciler.github import GitHubClient, PullCommit, PullRequest, Review, parse_co_authors
from reconciler.gitrepo.repository import CommitInfo, GitRepository
from reconciler.model.documents import Members
from reconciler.policy.votes import Vote, requesters, votes_from_reviews

log = logging.getLogger(__name__)

# How far before a landing commit's committer time the closed pull requests are searched for the
# one that landed it (clocks of merges made outside GitHub may be off).
CLOSED_LOOKBACK = timedelta(days=1)
# How far a squash or rebased commit's committer time may lie from its pull request's merge time.
MERGE_TIME_SLACK = timedelta(minutes=10)


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

    def reviews_until(self, until: datetime | None) -> list[Review]:
        """The reviews submitted by `until` (all when None), oldest first."""
        return [
            r
            for r in self.reviews
            if until is None or (r.submitted_at is not None and r.submitted_at <= until)
        ]


def _fetch_missing(repo: GitRepository, number: int, shas: set[str]) -> frozenset[str]:
    missing = {sha for sha in shas if not repo.has_commit(sha)}
    if missing and repo.fetch_pull_head(number):
        missing = {sha for sha in missing if not repo.has_commit(sha)}
    if missing:
        log.warning(
            "pull request #%d: commits %s cannot be read in %s even after fetching refs/pull/%d/head",
            number,
            ", ".join(sorted(s[:12] for s in missing)),
            repo.describe(),
            number,
        )
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

    votes = votes_from_reviews(snapshot.reviews_until(until), file_changed_since=changed_since)
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
    note = (
        f"[treated as stale: the reviewed commit {vote.commit_id[:12]} cannot be read from the "
        f"repository, even after fetching the pull request's head]"
    )
    return replace(vote, reason=f"{vote.reason}\n\n{note}".strip())


def _requesters(
    repo: GitRepository, snapshot: PullSnapshot, path: str, index: MemberIndex, exclude: str | None
) -> set[str]:
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
        people.append(
            _api_author(api, index)
            if api and api.author_login
            else index.person(commit.author_name, commit.author_email)
        )
        people += [index.login_for(a.email) or a.email for a in parse_co_authors(commit.message)]
    return requesters(None, people)


def _api_author(commit: PullCommit, index: MemberIndex) -> str | None:
    return (
        index.login_for(commit.author_login, commit.author_email)
        or commit.author_login
        or commit.author_email
    )


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
        # Whether GitHub's commit listing is complete for the tracked branch: it is for the
        # default branch (None: the remote's default), learnt from `base.repo.default_branch`.
        self._tracks_default_branch = repo.branch is None
        # the closed pull requests into the tracked branch read so far, newest update first
        self._closed: list[PullRequest] = []
        self._closed_pages: Iterator[PullRequest] | None = None
        self._closed_done = False
        self._ranks: dict[tuple[int, str], int | None] = {}  # `_landed_by`, each pair judged once
        self._trees: dict[str, dict[str, str]] = {}  # blob ids per commit, for `_carries_pull_content`

    def context(self, landing: CommitInfo, path: str, members: Members) -> ApprovalContext:
        snapshot = self.snapshot_for(landing)
        if snapshot is None:  # pushed without a pull request: nobody reviewed it, only a bypass applies it
            return pushed_context(self.repo, landing, path, MemberIndex(members))
        index = MemberIndex(members)
        merged_by = snapshot.pull.merged_by
        merger = (
            (index.login_for(merged_by) or merged_by)
            if merged_by
            else index.person(landing.committer_name, landing.committer_email)
        )
        return pull_request_context(
            self.repo,
            snapshot,
            path,
            members,
            target=landing.sha,
            exclude=landing.parent,
            until=snapshot.pull.merged_at,
            fallback_created=landing.authored_at,
            merger=merger,
        )

    def same_change(self, landing: CommitInfo, later: CommitInfo) -> bool:
        """Both commits came from one merged pull request (a rebase merge lands several)."""
        first = self.snapshot_for(landing)
        return first is not None and first is self.snapshot_for(later)

    def snapshot_for(self, landing: CommitInfo) -> PullSnapshot | None:
        """The merged pull request `landing` came from, read once per pass; None for a direct push."""
        if landing.sha not in self._pull_of:
            pull = self._merged_pull(landing)
            self._pull_of[landing.sha] = pull.number if pull else None
            if pull is not None and pull.number not in self._snapshots:
                full = self.client.get_pull(pull.number)  # the listings have no merged_by
                self._snapshots[pull.number] = PullSnapshot.read(self.client, self.repo, full)
        number = self._pull_of[landing.sha]
        return None if number is None else self._snapshots[number]

    def _merged_pull(self, landing: CommitInfo) -> PullRequest | None:
        """The merged pull request that landed `landing`: the one whose merge commit it is, else the
        one into the tracked branch merged first (each commit of a rebase merge maps to it).

        GitHub's commit listing (one request) answers for the default branch; for any other
        tracked branch it lists open pull requests only, so the closed ones into that branch
        are searched next.
        """
        listed = self.client.pulls_for_commit(landing.sha)
        self._learn_default_branch(listed)
        merged = [p for p in listed if p.merged_at is not None]
        exact = [p for p in merged if p.merge_commit_sha == landing.sha]
        into_branch = [p for p in merged if self.repo.branch is None or p.base_ref == self.repo.branch]
        candidates = exact or into_branch or merged
        if candidates:
            return min(candidates, key=lambda p: (p.merged_at, p.number))
        if self._tracks_default_branch:
            return None  # the listing was complete: a direct push
        return self._closed_pull(landing)

    def _learn_default_branch(self, pulls: list[PullRequest]) -> None:
        branch = self.repo.branch
        if any(p.default_branch is not None and p.default_branch == branch for p in pulls):
            self._tracks_default_branch = True

    def _closed_pull(self, landing: CommitInfo) -> PullRequest | None:
        """The merged pull request into the tracked branch that landed `landing`, from the closed
        pull requests into it, most recently updated first.

        Pages are read as far back as a pull request merged around `landing` can lie (its
        `updated_at` is never before its merge), and kept for the rest of the pass. Every match
        is checked against the pull request object, never a commit message: see `_landed_by`.
        """
        branch = self.repo.branch
        assert branch is not None  # the default branch's listing is complete
        oldest = landing.committed_at - CLOSED_LOOKBACK
        while not self._closed_done and not self._surely_landed(landing):
            last = self._closed[-1] if self._closed else None
            if last is not None and last.updated_at is not None and last.updated_at < oldest:
                break
            if self._closed_pages is None:
                self._closed_pages = self.client.iter_closed_pulls(branch)
            try:
                pull = next(self._closed_pages, None)
            except Exception:
                # a failed page ends the listing: start it over should this source be asked again
                self._closed, self._closed_pages = [], None
                raise
            if pull is None:
                self._closed_done = True
                break
            self._closed.append(pull)
            self._learn_default_branch([pull])
            if self._tracks_default_branch:
                return None  # the commit listing was complete after all: a direct push
        matches = [(rank, p) for p in self._closed if (rank := self._landed_by(p, landing)) is not None]
        if not matches:
            return None
        return min(matches, key=lambda m: (m[0], _distance(m[1], landing), m[1].number))[1]

    def _surely_landed(self, landing: CommitInfo) -> bool:
        return any((rank := self._landed_by(p, landing)) is not None and rank <= 1 for p in self._closed)

    def _landed_by(self, pull: PullRequest, landing: CommitInfo) -> int | None:
        key = (pull.number, landing.sha)
        if key not in self._ranks:
            self._ranks[key] = self._rank(pull, landing)
        return self._ranks[key]

    def _rank(self, pull: PullRequest, landing: CommitInfo) -> int | None:
        """How surely `pull` landed `landing` (0 surest), or None when it did not.

        Only a pull request merged into the tracked branch counts, and then:
        0. its `merge_commit_sha` is `landing` (a merge commit, a squash, a rebase's last commit);
        1. its head first became reachable at `landing` (a merge commit or a fast-forward);
        2. GitHub wrote `landing` when it merged (the earlier commits of a rebase merge; a squash
           or rebase when API versions from 2026-03-10 on leave `merge_commit_sha` out): the
           committer time is within `MERGE_TIME_SLACK` of the merge time, `landing` is in the
           history of the merge commit when GitHub names one, and every file `landing` changes
           is, byte for byte, that file as one of the pull request's own commits left it.
        A commit message is never evidence: anyone who can push can write "Merge pull request
        #N". Even a match of the third kind only lends the pull request's votes, and each vote
        counts only for the very file contents it reviewed.
        """
        if pull.merged_at is None or pull.base_ref != self.repo.branch:
            return None
        if pull.merge_commit_sha == landing.sha:
            return 0
        # GitHub merges after the commit that lands it exists (a merge made elsewhere is
        # recorded when pushed): only pull requests merged around `landing` are compared in git.
        late = pull.merged_at - landing.committed_at
        if late < -MERGE_TIME_SLACK or late > CLOSED_LOOKBACK:
            return None
        if (
            self.repo.has_commit(pull.head_sha)
            and self.repo.is_ancestor(pull.head_sha, landing.sha)
            and not (landing.parent and self.repo.is_ancestor(pull.head_sha, landing.parent))
        ):
            return 1
        if abs(late) > MERGE_TIME_SLACK:
            return None
        if pull.merge_commit_sha is not None and not (
            self.repo.has_commit(pull.merge_commit_sha)
            and self.repo.is_ancestor(landing.sha, pull.merge_commit_sha)
        ):
            return None
        return 2 if self._carries_pull_content(pull, landing) else None

    def _carries_pull_content(self, pull: PullRequest, landing: CommitInfo) -> bool:
        """Whether every file `landing` changes is as one of `pull`'s own commits left it."""
        paths = {p for change in landing.changes for p in (change.path, change.old_path) if p}
        if not paths or not (
            self.repo.has_commit(pull.head_sha)
            or (self.repo.fetch_pull_head(pull.number) and self.repo.has_commit(pull.head_sha))
        ):
            return False
        landed = self._blobs(landing.sha)
        own = self.repo.file_history(pull.head_sha, landing.parent)
        return all(
            any(
                self._blobs(commit.sha).get(path) == landed.get(path)
                for commit in own
                if any(path in (change.path, change.old_path) for change in commit.changes)
            )
            for path in paths
        )

    def _blobs(self, commit: str) -> dict[str, str]:
        if commit not in self._trees:
            self._trees[commit] = self.repo.blob_ids(commit)
        return self._trees[commit]


def _distance(pull: PullRequest, landing: CommitInfo) -> timedelta:
    return abs(pull.merged_at - landing.committed_at) if pull.merged_at else timedelta.max
