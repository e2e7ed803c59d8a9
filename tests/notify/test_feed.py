"""The audit events not told yet: each taken once, across processes, starting at the head."""

from __future__ import annotations

from reconciler.notify import feed
from reconciler.store import Store
from tests.support.apiseed import APPLIED, FAILED, at


def audit(store: Store, verb: str, record_id: str, file: str, commit: str | None = "c" * 40) -> None:
    with store.transaction() as tx:
        tx.append_audit(
            verb,
            object_type="change_request",
            object_id=record_id,
            at=at(1),
            commit=commit,
            data={"file": file},
        )


def test_notifications_start_at_the_head_and_take_each_event_once(store: Store) -> None:
    audit(store, "change_request.applied", APPLIED.id, "changes/history.yaml")
    feed.start(store)
    assert feed.take(store) == feed.Batch()  # the past is not told
    audit(store, "change_request.applied", APPLIED.id, "changes/now.yaml")
    audit(store, "change_request.pending", APPLIED.id, "changes/ignored.yaml", commit=None)
    audit(store, "change_request.failed", FAILED.id, "changes/broken.yaml")
    batch = feed.take(store)
    assert [(n.kind, n.subject) for n in batch.notices] == [
        ("applied", "changes/now.yaml"),
        ("failed", "changes/broken.yaml"),
    ]
    assert feed.take(store) == feed.Batch()


def test_two_processes_never_tell_the_same_event(store: Store, clean_store_url: str) -> None:
    feed.start(store)
    with Store.open(clean_store_url) as other:
        audit(store, "change_request.applied", APPLIED.id, "changes/one.yaml")
        first = feed.take(other)
        second = feed.take(store)
        audit(other, "change_request.applied", APPLIED.id, "changes/two.yaml")
        third = feed.take(store)
    assert [n.subject for n in first.notices] == ["changes/one.yaml"]
    assert second.notices == ()
    assert [n.subject for n in third.notices] == ["changes/two.yaml"]


def test_never_started_begins_at_the_head_on_the_first_take(store: Store) -> None:
    audit(store, "change_request.applied", APPLIED.id, "changes/old.yaml")
    assert feed.take(store) == feed.Batch()
    audit(store, "change_request.applied", APPLIED.id, "changes/new.yaml")
    assert [n.subject for n in feed.take(store).notices] == ["changes/new.yaml"]


def test_a_flood_is_counted_not_listed(store: Store) -> None:
    feed.start(store)
    with store.transaction() as tx:
        for i in range(feed.BATCH + 30):
            tx.append_audit(
                "change_request.applied",
                object_type="change_request",
                object_id=f"id-{i}",
                at=at(1),
                commit="c" * 40,
                data={"file": f"changes/{i}.yaml"},
            )
    batch = feed.take(store)
    assert (len(batch.notices), batch.more) == (feed.BATCH, 30)
    assert feed.take(store) == feed.Batch()


def test_taking_does_not_move_the_store_version(store: Store) -> None:
    """The API's caches key on the store version: telling people changes nothing they read."""
    feed.start(store)
    audit(store, "change_request.applied", APPLIED.id, "changes/x.yaml")
    version = store.store_version()
    feed.take(store)
    assert store.store_version() == version


def test_a_store_restored_to_an_older_trail_goes_on_from_its_head(store: Store) -> None:
    feed.start(store)
    with store.transaction() as tx:
        tx.bump(feed.TOLD_COUNTER, 500)  # told further than this trail goes, as after a restore
    assert feed.take(store) == feed.Batch()
    audit(store, "change_request.applied", APPLIED.id, "changes/after-restore.yaml")
    assert [n.subject for n in feed.take(store).notices] == ["changes/after-restore.yaml"]
