"""What each dashboard page shows, read from one authorised snapshot.

Each function takes the page's `Access` (the API's gate opened it: token, scope and
environment checked) and returns the template to render with its values. The reads are the
store's own queries and the API's own helpers (status, event scopes, policy views), so the
dashboard shows what the API serves, never a second interpretation of it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from reconciler.api.auth import Access, Caller
from reconciler.api.context import ApiContext
from reconciler.api.errors import ApiError
from reconciler.api.ids import is_uuid
from reconciler.api.ops import StatusProvider, position_body, restricted_status
from reconciler.api.posthog import shapes as posthog
from reconciler.api.posthog.events import EventFilter, EventScope, events_page
from reconciler.api.posthog.routes import caller_policies
from reconciler.api.ui import diff
from reconciler.model.states import (
    ACTIVITY_LOG_READ,
    APPROVALS_READ,
    CHANGE_REQUEST_STATES,
    CLOSED_UNMERGED,
    FEATURE_FLAG_READ,
    LIVE_STATES,
    NOT_IN_PULL_REQUEST,
    ORGANIZATION_MEMBER_READ,
)
from reconciler.store import (
    AuditRecord,
    ChangeRequestFilter,
    ChangeRequestRecord,
    EnvironmentRecord,
    FlagVersionRecord,
)

Page = tuple[str, dict[str, Any]]
PAGE_SIZE = 50
MAX_PAGE = 1_000_000
RECENT = timedelta(days=7)
MAX_LIVE = 2000  # live change requests the pull-request list reads, newest first
REJECTED_RULES = "rules.change_rejected"

WHAT_TO_DO = {
    "Synced": "Nothing to do: the store matches the tracked branch.",
    "OutOfSync": (
        "The last pass did not get to the branch's head. Read the last error below; the loop "
        "retries on its next poll, or run `reconciler reconcile` once it is fixed."
    ),
    "Diverged": (
        "The tracked branch no longer contains the last applied commit: its history was "
        "rewritten. Restore the branch (revert instead of force-pushing); nothing applies until then."
    ),
    "Unknown": "No pass has run yet: start `reconciler run`, or run `reconciler reconcile` once.",
}


@dataclass(frozen=True)
class UiContext:
    """What the pages share: the API's context, the service loop's status if any, and what
    "now" is (for expiry and recent changes)."""

    api: ApiContext
    status_provider: StatusProvider | None = None
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    def github(self, record_url: str | None = None) -> str | None:
        """The policy repository on GitHub, from the settings or a pull request's address."""
        repository = self.api.settings.repository
        if repository:
            return f"https://github.com/{repository}"
        if record_url and record_url.startswith("https://") and "/pull/" in record_url:
            return record_url.rsplit("/pull/", 1)[0]
        return None


@dataclass(frozen=True)
class Pager:
    """One page of a list: where it starts, how many there are, and the links around it."""

    path: str
    params: tuple[tuple[str, str], ...]
    number: int
    size: int = PAGE_SIZE
    count: int | None = None
    more: bool = False

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size

    @property
    def pages(self) -> int | None:
        return None if self.count is None else max(1, -(-self.count // self.size))

    @property
    def has_next(self) -> bool:
        return self.more if self.count is None else self.number < (self.pages or 1)

    def url(self, number: int) -> str:
        return f"{self.path}?{urlencode((*self.params, ('page', str(number))))}"

    def counted(self, count: int, more: bool = False) -> Pager:
        return Pager(self.path, self.params, self.number, self.size, count, more)

    def uncounted(self, more: bool) -> Pager:
        return Pager(self.path, self.params, self.number, self.size, None, more)


@dataclass
class Viewer:
    """The caller as the pages need them: scopes, and the environments they may read."""

    caller: Caller
    environments: list[EnvironmentRecord]
    by_key: dict[str, EnvironmentRecord] = field(default_factory=dict)

    @classmethod
    def of(cls, ui: UiContext, access: Access) -> Viewer:
        envs = ui.api.gate.environments(access.snapshot, access.version)
        readable = [e for e in envs.by_id.values() if access.caller.may_read(e.id)]
        return cls(access.caller, readable, {e.key: e for e in readable})

    def may(self, scope: str) -> bool:
        token = self.caller.token
        return token is None or token.allows(scope)

    @property
    def unrestricted(self) -> bool:
        return self.caller.environment_ids is None

    @property
    def environment_ids(self) -> tuple[int, ...] | None:
        """The filter that keeps a list to what the caller may read (None: everything)."""
        return None if self.unrestricted else tuple(e.id for e in self.environments)

    def environment(self, key: str) -> EnvironmentRecord:
        env = self.by_key.get(key)
        if env is None:
            raise ApiError(404, f"no environment {key!r} (or this token may not read it)")
        return env

    def may_read(self, record: ChangeRequestRecord) -> bool:
        return self.caller.may_read(record.environment_id)


def require(viewer: Viewer, scope: str) -> None:
    if not viewer.may(scope):
        raise ApiError(
            403,
            f"this token lacks the scope {scope!r}; "
            f"create one with `reconciler token create --scope {scope}`",
        )


# --- overview ----------------------------------------------------------------------------------


def overview(ui: UiContext, access: Access) -> Page:
    viewer = Viewer.of(ui, access)
    status = position_body(ui.api, ui.status_provider)
    if not viewer.unrestricted:
        status = restricted_status(status, viewer.caller)
    values: dict[str, Any] = {"status": status, "what_to_do": what_to_do(status), "viewer": viewer}
    if viewer.may(APPROVALS_READ):
        everything = ChangeRequestFilter(environment_ids=viewer.environment_ids, limit=0)
        counts = access.reader.change_request_state_counts(everything)
        since = ui.clock() - RECENT
        recent, _ = access.reader.list_change_requests(
            ChangeRequestFilter(environment_ids=viewer.environment_ids, applied_after=since, limit=0)
        )
        values["counts"] = {state: counts.get(state, 0) for state in CHANGE_REQUEST_STATES}
        values["recently_applied"] = recent
        values["recent_since"] = since.date().isoformat()
        if viewer.unrestricted:
            count, rejected = access.reader.list_audit(5, verb=REJECTED_RULES)
            values["rules_rejected"] = (count, rejected)
    return "overview.html", values


def what_to_do(status: dict[str, Any]) -> str:
    service = status.get("service") or {}
    if service.get("failing"):
        return "The reconcile loop is failing: read its last error below; it retries with backoff."
    return WHAT_TO_DO.get(str(status.get("sync_status")), WHAT_TO_DO["Unknown"])


# --- pull requests -----------------------------------------------------------------------------


def open_in_pull_request(record: ChangeRequestRecord) -> bool:
    """A live record of an open pull request: not landed, not dropped when it closed or lost the file."""
    error = record.apply_error or ""
    return record.commit is None and error != CLOSED_UNMERGED and not error.startswith(NOT_IN_PULL_REQUEST)


@dataclass(frozen=True)
class Waiting:
    """A live change request and, per governing policy, who can still approve it (as the live
    sync stored it: `policy.who_can_still_approve` over the evaluation that judged it)."""

    record: ChangeRequestRecord
    still: tuple[dict[str, Any], ...] = ()
    logins: tuple[str, ...] = ()
    expired: bool = False


def waiting(ui: UiContext, access: Access, record: ChangeRequestRecord) -> Waiting:
    """Who can still approve a live change request; nobody once it expired."""
    del access
    if record.expires_at is not None and record.expires_at < ui.clock():
        return Waiting(record, expired=True)
    still = tuple(
        s
        for s in record.still_to_approve or ()
        if isinstance(s, dict) and isinstance(s.get("can_approve"), list)
    )
    wanted = {login: None for s in still if s.get("needed") for login in s.get("can_approve") or ()}
    return Waiting(record, still, tuple(sorted(wanted, key=str.lower)))


def is_live(record: ChangeRequestRecord) -> bool:
    return record.state in LIVE_STATES and open_in_pull_request(record)


def pulls(ui: UiContext, access: Access, pager: Pager, waiting_on: str | None) -> Page:
    """Open pull requests, newest first, each with its live change requests. Only the pull
    requests shown are judged, unless "waiting on" needs every one judged to filter them; at
    most `MAX_LIVE` live change requests (the newest) are read."""
    viewer = Viewer.of(ui, access)
    require(viewer, APPROVALS_READ)
    _count, live = access.reader.list_change_requests(
        ChangeRequestFilter(
            states=LIVE_STATES,
            has_pull_request=True,
            landed=False,
            environment_ids=viewer.environment_ids,
            limit=MAX_LIVE,
        )
    )
    groups: dict[int, list[ChangeRequestRecord]] = {}
    for record in live:
        if open_in_pull_request(record) and record.pull_request_number is not None:
            groups.setdefault(record.pull_request_number, []).append(record)
    judged: dict[int, list[Waiting]] = {}
    if waiting_on:
        wanted = waiting_on.lower()
        for number, records in groups.items():
            entries = [waiting(ui, access, r) for r in records]
            if any(wanted in (login.lower() for login in entry.logins) for entry in entries):
                judged[number] = entries
        numbers = sorted(judged, reverse=True)
    else:
        numbers = sorted(groups, reverse=True)
    pager = pager.counted(len(numbers))
    shown = numbers[pager.offset : pager.offset + pager.size]
    rows = [(n, judged.get(n) or [waiting(ui, access, r) for r in groups[n]]) for n in shown]
    return "pulls.html", {
        "pulls": rows,
        "pager": pager,
        "waiting_on": waiting_on or "",
        "truncated": len(live) >= MAX_LIVE,
        "max_live": MAX_LIVE,
    }


def pull(ui: UiContext, access: Access, number: int) -> Page:
    viewer = Viewer.of(ui, access)
    require(viewer, APPROVALS_READ)
    _count, records = access.reader.list_change_requests(
        ChangeRequestFilter(pull_request_number=number, environment_ids=viewer.environment_ids, limit=1000)
    )
    if not records:
        raise ApiError(404, f"no change request of pull request #{number} (or this token may not read it)")
    live = [waiting(ui, access, r) for r in records if is_live(r)]
    others = [r for r in records if not is_live(r)]
    url = next((r.pull_request_url for r in records if r.pull_request_url), None)
    return "pull.html", {"number": number, "live": live, "others": others, "url": url, "ui": ui}


# --- change requests ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ChangeFilters:
    """The change-request list's filters as the form sends them."""

    state: str = ""
    environment: str = ""
    flag: str = ""
    requester: str = ""
    since: str = ""
    until: str = ""

    def params(self) -> tuple[tuple[str, str], ...]:
        return tuple((k, v) for k, v in vars(self).items() if v)


def parse_day(value: str, what: str) -> datetime | None:
    if not value:
        return None
    try:
        day = datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise ApiError(400, f"{what} {value!r} is not a date: write it as YYYY-MM-DD", attr=what) from None
    return day


def changes(ui: UiContext, access: Access, pager: Pager, filters: ChangeFilters) -> Page:
    viewer = Viewer.of(ui, access)
    require(viewer, APPROVALS_READ)
    if filters.state and filters.state not in CHANGE_REQUEST_STATES:
        raise ApiError(400, f"unknown state {filters.state!r}: use one of {', '.join(CHANGE_REQUEST_STATES)}")
    environment_ids = viewer.environment_ids
    if filters.environment:
        environment_ids = (viewer.environment(filters.environment).id,)
    until = parse_day(filters.until, "until")
    query = ChangeRequestFilter(
        states=(filters.state,) if filters.state else None,
        environment_ids=environment_ids,
        resource_id=filters.flag or None,
        requester=filters.requester or None,
        created_after=parse_day(filters.since, "since"),
        created_before=until + timedelta(days=1) if until else None,
        limit=pager.size,
        offset=pager.offset,
    )
    count, records = access.reader.list_change_requests(query)
    return "changes.html", {
        "records": records,
        "pager": pager.counted(count),
        "filters": filters,
        "states": CHANGE_REQUEST_STATES,
        "environments": viewer.environments,
        "ui": ui,
    }


def change(ui: UiContext, access: Access, change_request_id: str) -> Page:
    viewer = Viewer.of(ui, access)
    require(viewer, APPROVALS_READ)
    record = access.reader.get_change_request(change_request_id) if is_uuid(change_request_id) else None
    if record is None or not viewer.may_read(record):
        raise ApiError(404, f"no change request {change_request_id} (or this token may not read it)")
    before, after, diff_label = _before_after(access, record)
    events: tuple[int, list[AuditRecord]] = (0, [])
    if viewer.may(ACTIVITY_LOG_READ):
        events = access.reader.list_audit(200, object_type="change_request", object_id=record.id)
    return "change.html", {
        "cr": record,
        "flag_diff": diff.lines(before, after),
        "diff_label": diff_label,
        "snapshot": diff.pretty(record.policy_snapshot) if record.policy_snapshot is not None else None,
        "spec": diff.pretty(record.spec),
        "events": events,
        "may_events": viewer.may(ACTIVITY_LOG_READ),
        "waiting": waiting(ui, access, record) if is_live(record) else None,
        "github": ui.github(record.pull_request_url),
        "ui": ui,
    }


def _before_after(access: Access, record: ChangeRequestRecord) -> tuple[Any, Any, str]:
    if record.environment_id is not None:
        versions = access.reader.flag_versions_of_change(record.environment_id, record.resource_id, record.id)
        if versions:
            after = versions[-1].flag.model_dump(mode="json")
            before = versions[0].flag.model_dump(mode="json") if len(versions) == 2 else None
            return before, after, f"The flag before and after version {versions[-1].flag.version}"
    display = record.intent_display if isinstance(record.intent_display, dict) else {}
    if "before" in display or "after" in display:
        return display.get("before"), display.get("after"), "What the change would do (not applied)"
    return None, None, "Nothing applied"


# --- flags -------------------------------------------------------------------------------------


def flag_environments(ui: UiContext, access: Access) -> Page:
    viewer = Viewer.of(ui, access)
    require(viewer, FEATURE_FLAG_READ)
    return "flag_environments.html", {"environments": viewer.environments}


def flags(ui: UiContext, access: Access, pager: Pager, environment: str) -> Page:
    viewer = Viewer.of(ui, access)
    require(viewer, FEATURE_FLAG_READ)
    env = viewer.environment(environment)
    records = sorted(access.reader.list_flags(env.id), key=lambda f: f.flag.key)
    pager = pager.counted(len(records))
    return "flags.html", {
        "env": env,
        "flags": records[pager.offset : pager.offset + pager.size],
        "pager": pager,
    }


@dataclass(frozen=True)
class HistoryEntry:
    version: FlagVersionRecord
    change: ChangeRequestRecord | None
    diff: list[diff.DiffLine]


def flag(ui: UiContext, access: Access, pager: Pager, environment: str, key: str) -> Page:
    viewer = Viewer.of(ui, access)
    require(viewer, FEATURE_FLAG_READ)
    env = viewer.environment(environment)
    current = access.reader.get_flag(env.id, key)
    if current is None:
        raise ApiError(404, f"no flag {key!r} in environment {env.key!r}")
    count, versions = access.reader.flag_history_page(env.id, key, limit=pager.size + 1, offset=pager.offset)
    ids = [v.change_request_id for v in versions if v.change_request_id]
    found = access.reader.change_requests_by_id(ids) if viewer.may(APPROVALS_READ) else {}
    entries = []
    for i, version in enumerate(versions[: pager.size]):
        older = versions[i + 1].flag.model_dump(mode="json") if i + 1 < len(versions) else None
        changed = found.get(version.change_request_id or "")
        entries.append(
            HistoryEntry(version, changed, diff.lines(older, version.flag.model_dump(mode="json")))
        )
    return "flag.html", {
        "env": env,
        "record": current,
        "flag": current.flag,
        "payloads": {k: diff.pretty(v) for k, v in current.flag.filters.payloads.items()},
        "history": entries,
        "pager": pager.counted(count),
        "github": ui.github(),
        "ui": ui,
    }


# --- rules -------------------------------------------------------------------------------------


class ReadableEvents(EventScope):
    """The events a caller restricted to several environments sees: those any of them shows."""

    def __init__(self, access: Access, environments: list[EnvironmentRecord]):
        super().__init__(access.reader, environments[0], access.caller)
        self.scopes = [EventScope(access.reader, env, access.caller) for env in environments]

    def shows(self, event: AuditRecord) -> bool:
        return any(scope.shows(event) for scope in self.scopes)


def rules(ui: UiContext, access: Access, pager: Pager, verify: Callable[[], tuple[bool, int]]) -> Page:
    viewer = Viewer.of(ui, access)
    values: dict[str, Any] = {"viewer": viewer}
    if viewer.may(APPROVALS_READ):
        directory = ui.api.members(access)
        readable = [
            p
            for p in access.reader.list_policies()
            if viewer.unrestricted or any(posthog.policy_applies_to(p, e.key) for e in viewer.environments)
        ]
        values["policies"] = [
            (p, shown) for p in readable for shown in caller_policies(ui.api, access, p, directory)
        ]
        if viewer.unrestricted:
            values["rejected"] = access.reader.list_audit(50, verb=REJECTED_RULES)
    if viewer.may(ORGANIZATION_MEMBER_READ):
        values["members"] = ui.api.members(access).current
    if viewer.may(ACTIVITY_LOG_READ):
        if viewer.unrestricted:
            count, events = access.reader.list_audit(pager.size, pager.offset)
            values["pager"] = pager.counted(count)
        elif viewer.environments:
            events, more = events_page(
                ReadableEvents(access, viewer.environments), EventFilter(), pager.offset, pager.size
            )
            values["pager"] = pager.uncounted(more)
        else:
            events = []
            values["pager"] = pager.uncounted(False)
        values["events"] = events
        intact, checked = verify()
        values["chain"] = {"intact": intact, "checked": checked if viewer.unrestricted else None}
    return "rules.html", values
