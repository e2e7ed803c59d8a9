"""The audit trail: append-only, hash-chained, and `reconciler audit verify` names tampering."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from reconciler.cli import main
from reconciler.errors import StoreError
from reconciler.store import Store
from reconciler.store.audit import row_hash
from reconciler.store.schema import audit_events
from tests.support.storedata import at


@pytest.fixture
def audited(store: Store) -> Store:
    """The clean store, with five audit events."""
    with store.transaction() as tx:
        for n in range(1, 6):
            tx.append_audit(
                "change_request.applied" if n % 2 else "policy.updated",
                object_type="change_request",
                object_id=f"cr-{n}",
                actor="grace",
                data={"n": n, "rollout": {"before": 10, "after": 50.5}, "note": "ünïcode"},
                commit=f"{n:040x}",
                at=at(n),
            )
    return store


def _sql(store: Store, statement: str, **params: object) -> None:
    with store.engine.begin() as conn:
        conn.execute(sa.text(statement), params)


def _verify(url: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["audit", "verify", "--store", url])
    return result.exit_code, result.output


def test_events_chain_and_list_newest_first(audited: Store) -> None:
    count, events = audited.list_audit(limit=2)
    assert count == 5
    assert [e.id for e in events] == [5, 4]
    assert events[0].prev_hash == events[1].hash
    assert events[0].data == {"n": 5, "rollout": {"before": 10, "after": 50.5}, "note": "ünïcode"}
    assert (events[0].actor, events[0].commit, events[0].created_at) == ("grace", f"{5:040x}", at(5))
    assert [e.object_id for e in audited.list_audit(limit=10, offset=3)[1]] == ["cr-2", "cr-1"]
    assert audited.list_audit(verb="policy.updated")[0] == 2
    assert [e.id for e in audited.list_audit(object_type="change_request", object_id="cr-3")[1]] == [3]


def test_an_untouched_trail_verifies(audited: Store, clean_store_url: str) -> None:
    result = audited.verify_audit()
    assert (result.intact, result.checked) == (True, 5)
    assert result.head_hash == audited.list_audit(limit=1)[1][0].hash
    code, output = _verify(clean_store_url)
    assert code == 0
    assert f"intact: 5 events, head {result.head_hash}" in output


def test_an_empty_trail_verifies(tmp_path: object) -> None:
    with Store.open(f"{tmp_path}/empty.db") as store:
        assert store.verify_audit().intact


def test_an_edited_row_is_named(audited: Store, clean_store_url: str) -> None:
    _sql(audited, "UPDATE audit_events SET actor = 'mallory' WHERE id = 3")
    problems = audited.verify_audit().problems
    assert [(p.id, p.kind) for p in problems] == [(3, "edited")]
    code, output = _verify(clean_store_url)
    assert code == 1
    assert "event 3: edited" in output


def test_an_edited_row_with_a_recomputed_hash_breaks_the_next_link(audited: Store) -> None:
    _sql(audited, "UPDATE audit_events SET data = :data WHERE id = 2", data='{"n":99}')
    with audited.reading() as r:
        row = r.conn.execute(sa.select(audit_events).where(audit_events.c.id == 2)).one()
    _sql(audited, "UPDATE audit_events SET hash = :forged WHERE id = 2", forged=row_hash(row))
    assert [(p.id, p.kind) for p in audited.verify_audit().problems] == [(3, "inserted")]


def test_a_deleted_row_is_named(audited: Store, clean_store_url: str) -> None:
    _sql(audited, "DELETE FROM audit_events WHERE id = 2")
    assert [(p.id, p.kind) for p in audited.verify_audit().problems] == [(3, "deleted")]
    code, output = _verify(clean_store_url)
    assert code == 1
    assert "event 2 is missing before event 3" in output


def test_rows_cut_from_the_end_are_noticed(audited: Store) -> None:
    _sql(audited, "DELETE FROM audit_events WHERE id >= 4")
    problems = audited.verify_audit().problems
    assert [(p.id, p.kind) for p in problems] == [(4, "deleted")]
    assert "4-5 were cut" in problems[0].message


def test_an_inserted_row_is_named(audited: Store, clean_store_url: str) -> None:
    last = audited.list_audit(limit=1)[1][0]
    forged = {"id": 6, "verb": "change_request.applied", "actor": "mallory", "object_type": "change_request"}
    forged |= {
        "object_id": "cr-x",
        "data": "{}",
        "created_at": at(6),
        "prev_hash": last.hash,
        "hash": "f" * 64,
    }
    with audited.engine.begin() as conn:
        conn.execute(sa.insert(audit_events).values(**forged))
    problems = audited.verify_audit().problems
    assert (6, "edited") in [(p.id, p.kind) for p in problems]
    assert (6, "inserted") in [(p.id, p.kind) for p in problems]
    code, output = _verify(clean_store_url)
    assert code == 1
    assert "event 6" in output


def test_appends_after_reopening_continue_the_chain(audited: Store, clean_store_url: str) -> None:
    audited.close()
    with Store.open(clean_store_url) as again:
        with again.transaction() as tx:
            event = tx.append_audit("policy.updated", object_type="approval_policy", object_id="p", at=at(9))
        assert event.id == 6
        assert again.verify_audit().intact


def test_a_rolled_back_append_leaves_the_chain_intact(audited: Store) -> None:
    with pytest.raises(RuntimeError), audited.transaction() as tx:
        tx.append_audit("change_request.failed", object_type="change_request", object_id="z", at=at(7))
        raise RuntimeError("abort")
    with audited.transaction() as tx:
        event = tx.append_audit(
            "change_request.failed", object_type="change_request", object_id="z", at=at(7)
        )
    assert event.id == 6
    assert audited.verify_audit().intact


def test_audit_data_must_be_plain_json(audited: Store) -> None:
    with pytest.raises(StoreError, match="data is not plain JSON"), audited.transaction() as tx:
        tx.append_audit("x.y", object_type="o", object_id="1", at=at(9), data={"when": at(9)})
    assert audited.verify_audit().checked == 5
