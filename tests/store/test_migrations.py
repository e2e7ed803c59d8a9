"""Schema migrations: an old database upgrades in place on open, and the migrations build
exactly the schema the code declares."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from reconciler.store import ChangeRequestFilter, Store
from reconciler.store.connect import (
    alembic_config,
    current_revision,
    head_revision,
    make_engine,
    migrate,
    to_sqlalchemy_url,
)
from reconciler.store.schema import metadata
from tests.support.storedata import at


def test_migrations_build_exactly_the_declared_schema(clean_store_url: str) -> None:
    with Store.open(clean_store_url) as store, store.engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), metadata)
    assert differences == []


def test_an_old_database_upgrades_in_place_keeping_its_data(store_url: str) -> None:
    engine = make_engine(to_sqlalchemy_url(store_url))
    migrate(engine, "0001")
    assert current_revision(engine) == "0001"
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO change_requests (id, name, description, file, environment_key, environment_id,"
                " action_key, resource_type, resource_id, spec, state, validation_status, votes,"
                " created_by_login, created_at, updated_at)"
                " VALUES ('11111111-1111-4111-8111-111111111111', 'ramp', '', 'changes/ramp.yaml',"
                " 'production', 1,"
                " 'feature_flag.update', 'feature_flag', 'checkout', '{\"instructions\": []}',"
                " 'applied', 'valid',"
                " '[]', 'ada', :t, :t)"
            ),
            {"t": at(0)},
        )
        conn.execute(
            sa.text("INSERT INTO webhook_deliveries (id, received_at) VALUES ('d-1', :t)"), {"t": at(0)}
        )
    columns = {c["name"] for c in sa.inspect(engine).get_columns("webhook_deliveries")}
    assert "event" not in columns
    engine.dispose()

    with Store.open(store_url, migrate=False) as store:
        assert current_revision(store.engine) == "0001"
    with Store.open(store_url) as store:
        assert current_revision(store.engine) == head_revision() != "0001"
        count, rows = store.list_change_requests()
        assert count == 1
        assert (rows[0].name, rows[0].spec, rows[0].created_at) == ("ramp", {"instructions": []}, at(0))
        assert store.list_change_requests(ChangeRequestFilter(requester="ada"))[1] == rows
        assert store.record_delivery("d-1") is False
        assert store.record_delivery("d-2", event="push") is True
        indexes = {i["name"] for i in sa.inspect(store.engine).get_indexes("change_requests")}
        assert "ix_change_requests_requester" in indexes


def test_opening_a_current_database_again_changes_nothing(clean_store_url: str) -> None:
    with Store.open(clean_store_url) as store, store.transaction() as tx:
        tx.append_audit("policy.updated", object_type="approval_policy", object_id="p", at=at(0))
    with Store.open(clean_store_url) as store:
        assert store.verify_audit().checked == 1


def test_the_latest_revision_downgrades_to_the_first(store_url: str) -> None:
    with Store.open(store_url) as store, store.engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0001")
    with Store.open(store_url, migrate=False) as store:
        assert current_revision(store.engine) == "0001"
        columns = {c["name"] for c in sa.inspect(store.engine).get_columns("webhook_deliveries")}
        assert "event" not in columns
