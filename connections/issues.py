"""When issues open, reopen, resolve and change: pure rules, no database.

Given what a refresh (or an action) saw change on a tenant's connections, or how its runs
went, and the issues it already has (plain `IssueFacts`), these functions return the
`Transition`s to write. Writing them (one read, one insert, one update) is the service's.

Connection rules (`transitions`), per connection over its change dicts (`mirror.history`):
- The final status is the last `CHANGED status` new value, or `APPEARED`/`REAPPEARED`'s.
- ERROR opens (or reopens) `connection_error`, detail = its errorReason.
- An errorReason change while the error issue is live updates its detail only, no event.
- DISCONNECTED opens `connection_disconnected`, unless the portal disconnected it.
- SYNCED resolves error, disconnected and stuck; CONNECTED/SYNC_IN_PROGRESS resolve error
  and disconnected (the stuck clock is the sweep's, from `status_changed_at`).
- Moving from one problem to another resolves the old one as `replaced`.
- REMOVED opens `connection_removed` and quietly resolves the connection's other issues;
  REAPPEARED resolves `connection_removed`, then its status counts like any other.
- The portal's own disconnect (`cause=DISCONNECT`) opens nothing and resolves an error as
  `portal_action`, quietly.
- Reopen: a resolved issue of the same object and kind, resolved within ISSUE_REOPEN_HOURS,
  opens again (`occurrences + 1`, `first_seen_at` kept) instead of a new issue.
- Flapping: the 3rd opening within 6 h sets `flapping`; its transitions are quiet until it
  has been resolved for 6 h (`flapping_ended`).
- Muted: a muted issue transitions quietly; one reopened during its mute is muted again.
- Baseline: a site's first import opens its issues with `baseline=True`, quietly.

Tenant rules:
- `failed_run_transitions`: a credentials refusal opens `tenant_credentials` (and only it);
  otherwise ISSUE_REFRESH_FAILURES failed runs in a row open `tenant_refresh_failing`.
- `succeeded_run_transitions`: a run that read Wix resolves both.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from django.conf import settings

from wixapi import types as wix

from .models import ChangeKind, IssueKind, IssueResolution, IssueState, RefreshOutcome

FLAP_WINDOW = timedelta(hours=6)
FLAP_OPENINGS = 3

CONNECTION_PROBLEMS = (
    IssueKind.CONNECTION_ERROR,
    IssueKind.CONNECTION_DISCONNECTED,
    IssueKind.CONNECTION_STUCK,
)
# The kind each status opens, and the kinds it shows fixed.
OPENS = {
    wix.Status.ERROR: IssueKind.CONNECTION_ERROR,
    wix.Status.DISCONNECTED: IssueKind.CONNECTION_DISCONNECTED,
}
FIXES = {
    wix.Status.SYNCED: CONNECTION_PROBLEMS,
    # Not stuck: CONNECTED and SYNC_IN_PROGRESS are where a stuck connection is; only the
    # sweep knows for how long.
    wix.Status.CONNECTED: CONNECTION_PROBLEMS[:2],
    wix.Status.SYNC_IN_PROGRESS: CONNECTION_PROBLEMS[:2],
    # A different problem: the old one is replaced, not healthy.
    wix.Status.ERROR: (IssueKind.CONNECTION_DISCONNECTED, IssueKind.CONNECTION_STUCK),
    wix.Status.DISCONNECTED: (IssueKind.CONNECTION_ERROR, IssueKind.CONNECTION_STUCK),
    # [U] UNDEFINED says nothing either way: it opens and resolves nothing.
}
TENANT_RUN_KINDS = (IssueKind.TENANT_REFRESH_FAILING, IssueKind.TENANT_CREDENTIALS)


class Action(StrEnum):
    OPEN = "open"  # a new issue row
    REOPEN = "reopen"  # a resolved row opens again (occurrences + 1)
    RESOLVE = "resolve"
    UPDATE = "update"  # the detail only; no event


class Cause(StrEnum):
    """What wrote the changes, when it matters to the rules."""

    REFRESH = "refresh"
    DISCONNECT = "disconnect"  # the portal's own disconnect


class Quiet(StrEnum):
    """Why a transition's event tells no one ("" when it does)."""

    FLAPPING = "flapping"
    MUTED = "muted"
    BASELINE = "baseline"
    PORTAL_ACTION = "portal_action"
    # [U] The resolutions a removal implies: `connection.removed` says it all.
    REMOVED = "removed"


@dataclass(frozen=True)
class Rules:
    """The settings the rules read, apart so that tests can pass their own."""

    reopen_within: timedelta
    refresh_failures: int
    flap_window: timedelta = FLAP_WINDOW
    flap_openings: int = FLAP_OPENINGS

    @classmethod
    def from_settings(cls) -> Rules:
        return cls(
            reopen_within=timedelta(hours=settings.ISSUE_REOPEN_HOURS),
            refresh_failures=settings.ISSUE_REFRESH_FAILURES,
        )


@dataclass(frozen=True)
class IssueFacts:
    """What the rules need of an Issue row: a live one, or one resolved lately."""

    id: int
    kind: str
    connection_id: int | None
    state: str
    opened_at: datetime
    resolved_at: datetime | None = None
    detail: str = ""
    occurrences: int = 1
    muted_until: datetime | None = None
    recent_openings: tuple[datetime, ...] = ()
    flapping: bool = False
    baseline: bool = False

    @property
    def is_live(self) -> bool:
        return self.state != IssueState.RESOLVED

    @classmethod
    def of(cls, issue: Any) -> IssueFacts:
        """The facts of an Issue row already read (no query)."""
        return cls(
            id=issue.pk,
            kind=issue.kind,
            connection_id=issue.connection_id,
            state=issue.state,
            opened_at=issue.opened_at,
            resolved_at=issue.resolved_at,
            detail=issue.detail,
            occurrences=issue.occurrences,
            muted_until=issue.muted_until,
            recent_openings=tuple(datetime.fromisoformat(t) for t in issue.recent_openings),
            flapping=issue.flapping,
            baseline=issue.baseline,
        )


@dataclass(frozen=True)
class RunFacts:
    """What the tenant rules need of a RefreshRun."""

    id: int
    outcome: str
    error_code: str = ""
    credentials_refused: bool = False

    @property
    def failed(self) -> bool:
        return self.outcome == RefreshOutcome.FAILED


@dataclass(frozen=True)
class Transition:
    """One write to an issue: its new values, the row that caused it, and whether to tell."""

    action: Action
    kind: str
    connection_id: int | None
    issue_id: int | None = None  # None when opening a new row
    state: str = IssueState.OPEN
    detail: str = ""
    occurrences: int = 1
    resolution: str = ""
    change_id: int | None = None
    run_id: int | None = None
    recent_openings: tuple[datetime, ...] = field(default=())
    flapping: bool = False
    baseline: bool = False
    quiet: str = ""  # a Quiet, or "" when the event tells people

    @property
    def notifies(self) -> bool:
        """Whether the transition's event tells anyone (an UPDATE has no event)."""
        return self.action != Action.UPDATE and not self.quiet


def flapping_ended(issue: IssueFacts, now: datetime, rules: Rules | None = None) -> bool:
    """A flapping issue stops flapping once it has been resolved for the flap window."""
    window = (rules or Rules.from_settings()).flap_window
    return (
        issue.flapping
        and issue.resolved_at is not None
        and issue.state == IssueState.RESOLVED
        and issue.resolved_at <= now - window
    )


def transitions(
    changes: Iterable[tuple[int | None, Mapping[str, Any]]],
    issues: Iterable[IssueFacts],
    *,
    now: datetime,
    run_id: int | None = None,
    baseline: bool = False,
    cause: Cause = Cause.REFRESH,
    error_reasons: Mapping[int, str] | None = None,
    rules: Rules | None = None,
) -> tuple[Transition, ...]:
    """The issue transitions of a tenant's connection changes.

    `changes`: `(pk, row)` of the ConnectionChange rows written (`mirror.history`'s dicts;
    pk None if not known). `issues`: the tenant's live issues and those resolved lately (any
    older are ignored). `error_reasons`: each connection's errorReason as written, for the
    statuses that do not carry it (APPEARED, REAPPEARED, CHANGED status alone).
    """
    rules = rules or Rules.from_settings()
    by_connection: dict[int, list[tuple[int | None, Mapping[str, Any]]]] = defaultdict(list)
    for pk, row in changes:
        by_connection[row["connection_id"]].append((pk, row))
    known: dict[tuple[int | None, str], IssueFacts] = {}
    for issue in issues:
        if issue.connection_id not in by_connection:
            continue
        # A live issue wins over a resolved one of the same kind (there is at most one live).
        key = (issue.connection_id, issue.kind)
        if key not in known or issue.is_live:
            known[key] = issue
    context = _Context(now=now, run_id=run_id, baseline=baseline, cause=cause, rules=rules)
    out: list[Transition] = []
    for connection_id, rows in by_connection.items():
        reason = (error_reasons or {}).get(connection_id, "")
        out.extend(_connection(connection_id, rows, known, reason, context))
    return tuple(out)


def failed_run_transitions(
    runs: Sequence[RunFacts],
    issues: Iterable[IssueFacts],
    *,
    now: datetime,
    rules: Rules | None = None,
) -> tuple[Transition, ...]:
    """The tenant issue transitions of a failed run: `runs` newest first, that run first."""
    rules = rules or Rules.from_settings()
    if not runs or not runs[0].failed:
        return ()
    latest = runs[0]
    known = _tenant_issues(issues)
    context = _Context(now=now, run_id=latest.id, rules=rules)
    if latest.credentials_refused:
        # Refused credentials are the cause; "failing" as well would say it twice.
        return _open(IssueKind.TENANT_CREDENTIALS, None, latest.error_code, None, known, context)
    recent = runs[: rules.refresh_failures]
    # [U] Worker retries are runs too: three attempts of one refresh count as three.
    if len(recent) < rules.refresh_failures or not all(run.failed for run in recent):
        return ()
    return _open(IssueKind.TENANT_REFRESH_FAILING, None, latest.error_code, None, known, context)


def succeeded_run_transitions(
    run: RunFacts,
    issues: Iterable[IssueFacts],
    *,
    now: datetime,
    rules: Rules | None = None,
) -> tuple[Transition, ...]:
    """A run that read Wix (OK or PARTIAL) resolves the tenant's failing and credentials issues.

    [U] PARTIAL counts: Wix took the credentials and answered. `tenant_stale` is left to the
    sweep, which resolves it citing the run.
    """
    if run.outcome not in (RefreshOutcome.OK, RefreshOutcome.PARTIAL):
        return ()
    known = _tenant_issues(issues)
    context = _Context(now=now, run_id=run.id, rules=rules or Rules.from_settings())
    out: list[Transition] = []
    for kind in TENANT_RUN_KINDS:
        out.extend(_resolve(kind, None, IssueResolution.HEALTHY, None, known, context))
    return tuple(out)


# --- The rules' parts ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Context:
    now: datetime
    rules: Rules
    run_id: int | None = None
    baseline: bool = False
    cause: Cause = Cause.REFRESH


def _tenant_issues(issues: Iterable[IssueFacts]) -> dict[tuple[int | None, str], IssueFacts]:
    known: dict[tuple[int | None, str], IssueFacts] = {}
    for issue in issues:
        if issue.connection_id is None and (issue.kind not in known or issue.is_live):
            known[(None, issue.kind)] = issue
    return known


def _connection(
    connection_id: int,
    rows: list[tuple[int | None, Mapping[str, Any]]],
    known: dict[tuple[int | None, str], IssueFacts],
    reason: str,
    context: _Context,
) -> list[Transition]:
    out: list[Transition] = []
    status: str | None = None
    status_change: int | None = None
    reason_change: int | None = None
    for pk, row in rows:
        kind = row["kind"]
        if kind == ChangeKind.REMOVED:
            return _removed(connection_id, pk, known, context)
        if kind == ChangeKind.REAPPEARED:
            out += _resolve(
                IssueKind.CONNECTION_REMOVED,
                connection_id,
                IssueResolution.HEALTHY,
                pk,
                known,
                context,
            )
        if kind in (ChangeKind.APPEARED, ChangeKind.REAPPEARED) or (
            kind == ChangeKind.CHANGED and row["field"] == "status"
        ):
            status, status_change = row["new_value"], pk
        elif kind == ChangeKind.CHANGED and row["field"] == "error_reason":
            reason, reason_change = row["new_value"] or "", pk
    if status is None:
        # Only the errorReason changed: the live error issue says the new one, no event.
        # [U] An errorReason change with no live error issue opens nothing (the status did
        # not change, so the rules cannot tell it is ERROR).
        live = known.get((connection_id, IssueKind.CONNECTION_ERROR))
        if reason_change is not None and live and live.is_live and live.detail != reason:
            out.append(_update(live, reason, reason_change, context))
        return out
    disconnect = context.cause == Cause.DISCONNECT
    fixes = FIXES.get(status, ())
    if disconnect and status == wix.Status.DISCONNECTED:
        # A refresh that listed DISCONNECTED between Wix's answer and the action's mirror
        # opened an issue: the action that caused it resolves it.
        fixes = (*fixes, IssueKind.CONNECTION_DISCONNECTED)
    for kind in fixes:
        if disconnect and kind in (IssueKind.CONNECTION_ERROR, IssueKind.CONNECTION_DISCONNECTED):
            resolution = IssueResolution.PORTAL_ACTION
        elif status in OPENS:
            resolution = IssueResolution.REPLACED
        else:
            resolution = IssueResolution.HEALTHY
        quiet = Quiet.PORTAL_ACTION if disconnect else ""
        out += _resolve(kind, connection_id, resolution, status_change, known, context, quiet)
    opens = OPENS.get(status)
    if opens == IssueKind.CONNECTION_DISCONNECTED and disconnect:
        # The portal disconnected it on purpose: not a problem to report.
        return out
    if opens is not None:
        detail = reason if opens == IssueKind.CONNECTION_ERROR else ""
        out += _open(opens, connection_id, detail, status_change, known, context)
    return out


def _removed(
    connection_id: int,
    change_id: int | None,
    known: dict[tuple[int | None, str], IssueFacts],
    context: _Context,
) -> list[Transition]:
    """Removed from Wix: the other problems end with it (quietly), `removed` opens."""
    out: list[Transition] = []
    for kind in CONNECTION_PROBLEMS:
        out += _resolve(
            kind, connection_id, IssueResolution.REMOVED, change_id, known, context, Quiet.REMOVED
        )
    out += _open(IssueKind.CONNECTION_REMOVED, connection_id, "", change_id, known, context)
    return out


def _open(
    kind: str,
    connection_id: int | None,
    detail: str,
    change_id: int | None,
    known: dict[tuple[int | None, str], IssueFacts],
    context: _Context,
) -> tuple[Transition, ...]:
    """Open `kind`: a new issue, the recent one again, or (already live) its new detail."""
    now, rules = context.now, context.rules
    issue = known.get((connection_id, kind))
    if issue is not None and issue.is_live:
        return (_update(issue, detail, change_id, context),) if issue.detail != detail else ()
    reopen = (
        issue is not None
        and issue.resolved_at is not None
        and issue.resolved_at >= now - rules.reopen_within
    )
    if reopen:
        # Healthy for the whole flap window: the issue stops flapping and its count restarts.
        calm = flapping_ended(issue, now, rules)
        earlier = tuple(t for t in issue.recent_openings if t > now - rules.flap_window)
        openings = (*earlier, now)[-rules.flap_openings :]
        flapping = (issue.flapping and not calm) or len(openings) >= rules.flap_openings
        # [U] A mute outlives the episode: reopened before it expires, the issue is muted.
        muted = issue.muted_until is not None and issue.muted_until > now
        state = IssueState.MUTED if muted else IssueState.OPEN
        transition = Transition(
            action=Action.REOPEN,
            kind=kind,
            connection_id=connection_id,
            issue_id=issue.id,
            state=state,
            detail=detail,
            occurrences=issue.occurrences + 1,
            change_id=change_id,
            run_id=context.run_id,
            recent_openings=openings,
            flapping=flapping,
            # [U] A baseline issue reopened by a later refresh is a new break: it notifies.
            baseline=context.baseline,
        )
    else:
        transition = Transition(
            action=Action.OPEN,
            kind=kind,
            connection_id=connection_id,
            detail=detail,
            change_id=change_id,
            run_id=context.run_id,
            recent_openings=(now,),
            baseline=context.baseline,
        )
    return (replace(transition, quiet=_quiet(transition, context)),)


def _quiet(transition: Transition, context: _Context) -> str:
    # [U] One reason per event, the first that applies: baseline, muted, flapping.
    if transition.baseline:
        return Quiet.BASELINE
    if transition.state == IssueState.MUTED:
        return Quiet.MUTED
    if transition.flapping:
        return Quiet.FLAPPING
    return ""


def _resolve(
    kind: str,
    connection_id: int | None,
    resolution: str,
    change_id: int | None,
    known: dict[tuple[int | None, str], IssueFacts],
    context: _Context,
    quiet: str = "",
) -> tuple[Transition, ...]:
    """Resolve the live issue of `kind`, if there is one."""
    issue = known.get((connection_id, kind))
    if issue is None or not issue.is_live:
        return ()
    if not quiet:
        if issue.state == IssueState.MUTED:
            quiet = Quiet.MUTED
        elif issue.flapping:
            # Its recovery is told by the sweep, once it has stayed healthy (flapping_ended).
            quiet = Quiet.FLAPPING
        elif issue.baseline:
            # [U] Nobody was told it broke, so nobody is told it recovered.
            quiet = Quiet.BASELINE
    return (
        Transition(
            action=Action.RESOLVE,
            kind=kind,
            connection_id=connection_id,
            issue_id=issue.id,
            state=IssueState.RESOLVED,
            detail=issue.detail,
            occurrences=issue.occurrences,
            resolution=resolution,
            change_id=change_id,
            run_id=context.run_id,
            recent_openings=issue.recent_openings,
            flapping=issue.flapping,
            baseline=issue.baseline,
            quiet=quiet,
        ),
    )


def _update(issue: IssueFacts, detail: str, change_id: int | None, context: _Context) -> Transition:
    return Transition(
        action=Action.UPDATE,
        kind=issue.kind,
        connection_id=issue.connection_id,
        issue_id=issue.id,
        state=issue.state,
        detail=detail,
        occurrences=issue.occurrences,
        change_id=change_id,
        run_id=context.run_id,
        recent_openings=issue.recent_openings,
        flapping=issue.flapping,
        baseline=issue.baseline,
    )
