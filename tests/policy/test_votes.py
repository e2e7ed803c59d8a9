"""GitHub reviews become votes: the latest decisive review per reviewer stands; stale ones do not."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from reconciler.policy.votes import Vote, co_author_emails, requesters, votes_from_reviews
from tests.support.policyutil import REVIEW, review


def never_changed(commit: str) -> bool:
    return False


def test_the_real_review_payload_becomes_one_approval() -> None:
    [vote] = votes_from_reviews([REVIEW], file_changed_since=never_changed)
    assert vote == Vote(
        login="octocat",
        decision="approved",
        at=datetime(2019, 11, 17, 17, 43, 43, tzinfo=UTC),
        commit_id="ecdd80bb57125d7ba9641ffaa4d7d2c19d3f3091",
        stale=False,
        source="review",
        reason="Here is the body for the review.",
    )


def decisions(reviews: list[dict[str, Any]]) -> dict[str, str]:
    return {v.login: v.decision for v in votes_from_reviews(reviews, file_changed_since=never_changed)}


def test_changes_requested_then_approved_by_the_same_reviewer_is_an_approval() -> None:
    reviews = [review("alice", "CHANGES_REQUESTED", minute=1), review("alice", "APPROVED", minute=2)]
    assert decisions(reviews) == {"alice": "approved"}


def test_approved_then_changes_requested_is_a_rejection() -> None:
    reviews = [review("alice", "APPROVED", minute=1), review("alice", "CHANGES_REQUESTED", minute=2)]
    assert decisions(reviews) == {"alice": "rejected"}


def test_a_comment_or_pending_review_after_an_approval_leaves_it_standing() -> None:
    reviews = [review("alice", "APPROVED"), review("alice", "COMMENTED"), review("alice", "PENDING")]
    assert decisions(reviews) == {"alice": "approved"}


def test_a_comment_after_changes_requested_leaves_the_rejection_standing() -> None:
    reviews = [review("alice", "CHANGES_REQUESTED"), review("alice", "COMMENTED")]
    assert decisions(reviews) == {"alice": "rejected"}


def test_a_dismissed_review_removes_the_vote_but_stays_visible() -> None:
    reviews = [review("alice", "APPROVED"), review("alice", "DISMISSED"), review("alice", "COMMENTED")]
    assert decisions(reviews) == {"alice": "dismissed"}


def test_approving_again_after_a_dismissal_counts_again() -> None:
    reviews = [review("alice", "DISMISSED", minute=1), review("alice", "APPROVED", minute=2)]
    assert decisions(reviews) == {"alice": "approved"}


def test_only_comments_make_no_vote() -> None:
    assert decisions([review("alice", "COMMENTED"), review("bob", "PENDING")]) == {}


def test_logins_are_one_reviewer_whatever_their_case() -> None:
    reviews = [review("Alice", "APPROVED", minute=1), review("alice", "CHANGES_REQUESTED", minute=2)]
    assert decisions(reviews) == {"alice": "rejected"}


def test_a_deleted_account_casts_no_vote() -> None:
    assert decisions([review(None, "APPROVED"), review("bob", "APPROVED")]) == {"bob": "approved"}


def test_votes_follow_the_order_of_each_reviewers_deciding_review() -> None:
    reviews = [
        review("alice", "APPROVED", minute=1),
        review("bob", "APPROVED", minute=2),
        review("alice", "APPROVED", minute=3),
    ]
    assert list(decisions(reviews)) == ["bob", "alice"]


def test_an_approval_of_a_commit_where_the_file_differed_is_stale() -> None:
    # The file was edited after c1 (so c1 differs from the merged one); c2 has the final file.
    asked: list[str] = []

    def changed(commit: str) -> bool:
        asked.append(commit)
        return commit == "c1"

    votes = votes_from_reviews(
        [
            review("alice", "APPROVED", "c1"),
            review("bob", "APPROVED", "c2"),
            review("erin", "CHANGES_REQUESTED", "c1"),
        ],
        file_changed_since=changed,
    )
    assert {v.login: v.stale for v in votes} == {"alice": True, "bob": False, "erin": False}
    assert asked == ["c1", "c2"]  # rejections never go stale, so nobody asks about them


def test_an_approval_without_a_reviewed_commit_is_stale() -> None:
    data = review("alice", "APPROVED")
    data["commit_id"] = None
    [vote] = votes_from_reviews([data], file_changed_since=never_changed)
    assert vote.stale


def test_requesters_are_the_author_and_every_file_author_lower_cased() -> None:
    assert requesters("Carol", ["bob", None, "ERIN", "carol"]) == {"carol", "bob", "erin"}
    assert requesters(None, []) == set()


def test_co_authors_are_read_from_commit_trailers() -> None:
    message = (
        "Ramp checkout to 50%\n\nWhy: the canary was clean.\n\n"
        "Co-authored-by: Bob Builder <Bob@Example.com>\nco-authored-by: erin <erin@example.com>\n"
    )
    assert co_author_emails(message) == ["bob@example.com", "erin@example.com"]
    assert co_author_emails("No trailers here") == []


LOGINS = st.sampled_from(["alice", "Alice", "bob", "erin"])
DECISIVE = st.sampled_from(["APPROVED", "CHANGES_REQUESTED", "DISMISSED"])
NEUTRAL = st.sampled_from(["COMMENTED", "PENDING"])


@given(
    st.lists(st.tuples(LOGINS, DECISIVE), max_size=12),
    st.lists(st.tuples(st.integers(0, 12), LOGINS, NEUTRAL), max_size=6),
)
def test_comment_and_pending_reviews_never_change_any_vote(
    decisive: list[tuple[str, str]], neutral: list[tuple[int, str, str]]
) -> None:
    reviews = [review(login, state) for login, state in decisive]
    mixed = list(reviews)
    for position, login, state in sorted(neutral, reverse=True):
        mixed.insert(min(position, len(mixed)), review(login, state))
    assert votes_from_reviews(mixed, file_changed_since=never_changed) == votes_from_reviews(
        reviews, file_changed_since=never_changed
    )


@given(st.lists(st.tuples(LOGINS, st.one_of(DECISIVE, NEUTRAL)), max_size=15))
def test_each_reviewer_has_at_most_one_vote_and_it_is_their_last_decision(
    history: list[tuple[str, str]],
) -> None:
    votes = votes_from_reviews(
        [review(login, state) for login, state in history], file_changed_since=never_changed
    )
    assert len({v.key for v in votes}) == len(votes)
    word = {"APPROVED": "approved", "CHANGES_REQUESTED": "rejected", "DISMISSED": "dismissed"}
    for vote in votes:
        last = [s for login, s in history if login.lower() == vote.key and s in word][-1]
        assert vote.decision == word[last]
