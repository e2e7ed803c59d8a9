"""What the read commands' arguments name in the store: an environment by key, a change
request by id, name or file. Each miss or ambiguity is a `ConfigError` that says what to type
instead, listing the names that would work.
"""

from __future__ import annotations

import uuid

from reconciler.errors import ConfigError
from reconciler.store import ChangeRequestFilter, ChangeRequestRecord, EnvironmentRecord, Reader

# At most this many candidates are named in an error.
SHOWN_CANDIDATES = 10


def environment(reader: Reader, key: str | None) -> EnvironmentRecord | None:
    """The environment `key` names; None for none given. A key the store does not know is an error."""
    if key is None:
        return None
    found = reader.environment_by_key(key)
    if found is None:
        raise ConfigError(f"no environment {key!r} in the store: {_known(reader)}")
    return found


def one_environment(reader: Reader, key: str | None) -> EnvironmentRecord:
    """The environment `key` names, or the only one there is; with several, `--environment` must say."""
    chosen = environment(reader, key)
    if chosen is not None:
        return chosen
    environments = reader.list_environments()
    if len(environments) == 1:
        return environments[0]
    raise ConfigError(f"say which environment with --environment: {_known(reader)}")


def _known(reader: Reader) -> str:
    keys = [e.key for e in reader.list_environments()]
    if not keys:
        return "it holds none yet (run `reconciler reconcile` first)"
    return f"use one of {', '.join(keys)}"


def change_request(reader: Reader, ident: str) -> ChangeRequestRecord:
    """The change request with this id, else this `metadata.name`, else at this file path."""
    if _is_uuid(ident):
        found = reader.get_change_request(ident.lower())
        if found is not None:
            return found
    for filters in (ChangeRequestFilter(name=ident), ChangeRequestFilter(file=ident)):
        count, records = reader.list_change_requests(
            ChangeRequestFilter(**{**vars(filters), "limit": SHOWN_CANDIDATES})
        )
        if count == 1:
            return records[0]
        if count > 1:
            listed = "; ".join(f"{r.id} ({r.file}, {r.state})" for r in records)
            more = f" and {count - len(records)} more" if count > len(records) else ""
            raise ConfigError(
                f"{count} change requests are named {ident!r}: give the id of one: {listed}{more}"
            )
    raise ConfigError(
        f"no change request with the id, name or file {ident!r}: `reconciler changes list` shows them"
    )


def _is_uuid(text: str) -> bool:
    try:
        return str(uuid.UUID(text)) == text.lower()
    except ValueError:
        return False
