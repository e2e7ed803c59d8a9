"""The flag store: flags and their history, policies, members, change requests, the audit
chain, API tokens and the reconciler's position, on SQLite or PostgreSQL.

Only this package talks to the database; everything else uses the typed API re-exported here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from reconciler.model.storeurl import DEFAULT_STORE, STORE_ENV, STORE_HELP
from reconciler.store.connect import (
    resolve_store_url,
    to_sqlalchemy_url,
)
from reconciler.store.core import Store
from reconciler.store.lock import LeaderLock
from reconciler.store.reader import Reader
from reconciler.store.records import (
    AuditProblem,
    AuditRecord,
    AuditVerification,
    ChangeRequestFilter,
    ChangeRequestRecord,
    EnvironmentRecord,
    FlagRecord,
    FlagVersionRecord,
    MemberRecord,
    PolicyRecord,
    Position,
    RoleRecord,
    TokenRecord,
    VoteRecord,
    change_request_uuid,
    policy_action_uuid,
    policy_uuid,
    role_uuid,
    stable_uuid,
)
from reconciler.store.transaction import Transaction


def open_store(option: str | None, env: Mapping[str, str] | None = None) -> Store:
    """Open the store a command names: its `--store` value, else RECONCILER_STORE, else the default."""
    return Store.open(resolve_store_url(option, os.environ if env is None else env))


__all__ = [
    "DEFAULT_STORE",
    "STORE_ENV",
    "STORE_HELP",
    "AuditProblem",
    "AuditRecord",
    "AuditVerification",
    "ChangeRequestFilter",
    "ChangeRequestRecord",
    "EnvironmentRecord",
    "FlagRecord",
    "FlagVersionRecord",
    "LeaderLock",
    "MemberRecord",
    "PolicyRecord",
    "Position",
    "Reader",
    "RoleRecord",
    "Store",
    "TokenRecord",
    "Transaction",
    "VoteRecord",
    "change_request_uuid",
    "open_store",
    "policy_action_uuid",
    "policy_uuid",
    "resolve_store_url",
    "role_uuid",
    "stable_uuid",
    "to_sqlalchemy_url",
]
