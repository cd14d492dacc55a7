"""The pure issue rules (connections/issues.py): what each change does to a connection's or
tenant's issues. No database: changes are `mirror.history`'s dicts, issues `IssueFacts`."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from connections.issues import (
    Action,
    Cause,
    IssueFacts,
    Quiet,
    Rules,
    RunFacts,
    Transition,
    failed_run_transitions,
    flapping_ended,
    succeeded_run_transitions,
    transitions,
)
from connections.models import ChangeKind, IssueKind, IssueState

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
RULES = Rules(reopen_within=timedelta(hours=24), refresh_failures=3)
CONN = 7
H = timedelta(hours=1)

ERROR = IssueKind.CONNECTION_ERROR
DISCONNECTED = IssueKind.CONNECTION_DISCONNECTED
REMOVED = IssueKind.CONNECTION_REMOVED
STUCK = IssueKind.CONNECTION_STUCK
FAILING = IssueKind.TENANT_REFRESH_FAILING
CREDENTIALS = IssueKind.TENANT_CREDENTIALS


# --- Builders ------------------------------------------------------------------------------


def change(kind, field="", old=None, new=None, *, connection=CONN, pk=100):
    """`(pk, row)` as the refresh has it: a ConnectionChange row's column values."""
    row = {
        "tenant_id": 1,
        "refresh_run_id": 9,
        "changed_at": NOW,
        "connection_id": connection,
        "kind": kind,
        "field": field,
        "old_value": old,
        "new_value": new,
    }
    return pk, row


def status(old, new, **kw):
    return change(ChangeKind.CHANGED, "status", old, new, **kw)


def reason(old, new, **kw):
    return change(ChangeKind.CHANGED, "error_reason", old, new, **kw)


def appeared(new, **kw):
    return change(ChangeKind.APPEARED, new=new, **kw)


def reappeared(new, **kw):
    return change(ChangeKind.REAPPEARED, new=new, **kw)


def removed(old, **kw):
    return change(ChangeKind.REMOVED, old=old, **kw)


def live(kind, *, id=1, connection=CONN, **fields) -> IssueFacts:
    fields.setdefault("opened_at", NOW - 2 * H)
    fields.setdefault("recent_openings", (fields["opened_at"],))
    return IssueFacts(id=id, kind=kind, connection_id=connection, state="open", **fields)


def resolved(kind, *, ago, **fields) -> IssueFacts:
    return replace(live(kind, **fields), state=IssueState.RESOLVED, resolved_at=NOW - ago)


def summary(result: tuple[Transition, ...]) -> list[tuple]:
    """(action, kind, resolution, quiet) of each transition, in order."""
    return [(t.action, t.kind, t.resolution, t.quiet) for t in result]


def run(changes, issues=(), *, now=NOW, **kw):
    kw.setdefault("error_reasons", {CONN: "TOKEN_REVOKED"})
    return transitions(changes, issues, now=now, run_id=9, rules=RULES, **kw)


def after(issues: list[IssueFacts], result, now: datetime) -> list[IssueFacts]:
    """The issues once `result` is written (what the service will do), for sequences."""
    issues = list(issues)
    for t in result:
        fields = {
            "state": t.state,
            "detail": t.detail,
            "occurrences": t.occurrences,
            "recent_openings": t.recent_openings,
            "flapping": t.flapping,
            "baseline": t.baseline,
        }
        if t.action == Action.OPEN:
            issues.append(
                IssueFacts(
                    id=len(issues) + 1,
                    kind=t.kind,
                    connection_id=t.connection_id,
                    opened_at=now,
                    **fields,
                )
            )
            continue
        i = next(n for n, issue in enumerate(issues) if issue.id == t.issue_id)
        if t.action == Action.REOPEN:
            fields.update(opened_at=now, resolved_at=None)
        elif t.action == Action.RESOLVE:
            fields.update(resolved_at=now)
        issues[i] = replace(issues[i], **fields)
    return issues


OPEN, REOPEN, RESOLVE, UPDATE = Action.OPEN, Action.REOPEN, Action.RESOLVE, Action.UPDATE


# --- Status transitions --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("issues", "changes", "expected"),
    [
        pytest.param([], [status("SYNCED", "ERROR")], [(OPEN, ERROR, "", "")], id="error-opens"),
        pytest.param(
            [], [status("SYNCED", "DISCONNECTED")], [(OPEN, DISCONNECTED, "", "")], id="disc-opens"
        ),
        pytest.param(
            [live(ERROR)],
            [status("ERROR", "SYNCED")],
            [(RESOLVE, ERROR, "healthy", "")],
            id="synced-resolves-error",
        ),
        pytest.param(
            [live(DISCONNECTED)],
            [status("DISCONNECTED", "CONNECTED")],
            [(RESOLVE, DISCONNECTED, "healthy", "")],
            id="connected-resolves-disconnected",
        ),
        pytest.param(
            [live(ERROR)],
            [status("ERROR", "SYNC_IN_PROGRESS")],
            [(RESOLVE, ERROR, "healthy", "")],
            id="sync-in-progress-resolves-error",
        ),
        pytest.param(
            [live(STUCK)],
            [status("CONNECTED", "SYNCED")],
            [(RESOLVE, STUCK, "healthy", "")],
            id="synced-resolves-stuck",
        ),
        pytest.param(
            [live(STUCK)], [status("CONNECTED", "SYNC_IN_PROGRESS")], [], id="stuck-stays-stuck"
        ),
        pytest.param(
            [live(ERROR)],
            [status("ERROR", "DISCONNECTED")],
            [(RESOLVE, ERROR, "replaced", ""), (OPEN, DISCONNECTED, "", "")],
            id="error-to-disconnected",
        ),
        pytest.param(
            [live(DISCONNECTED)],
            [status("DISCONNECTED", "ERROR")],
            [(RESOLVE, DISCONNECTED, "replaced", ""), (OPEN, ERROR, "", "")],
            id="disconnected-to-error",
        ),
        pytest.param(
            [live(STUCK)],
            [status("SYNC_IN_PROGRESS", "ERROR")],
            [(RESOLVE, STUCK, "replaced", ""), (OPEN, ERROR, "", "")],
            id="stuck-to-error",
        ),
        pytest.param([], [status("SYNCED", "CONNECTED")], [], id="healthy-to-healthy"),
        pytest.param([live(ERROR)], [status("ERROR", "UNDEFINED")], [], id="undefined-nothing"),
        pytest.param([], [appeared("ERROR")], [(OPEN, ERROR, "", "")], id="appeared-in-error"),
        pytest.param([], [appeared("SYNCED")], [], id="appeared-healthy"),
        pytest.param(
            [live(ERROR, detail="TOKEN_REVOKED")],
            [reason("TOKEN_REVOKED", "EXTERNAL_CALENDAR_DELETED")],
            [(UPDATE, ERROR, "", "")],
            id="reason-change-updates",
        ),
        pytest.param(
            [], [reason("TOKEN_REVOKED", "EXTERNAL_CALENDAR_DELETED")], [], id="reason-no-issue"
        ),
        pytest.param(
            [live(ERROR), live(STUCK, id=2)],
            [removed("ERROR")],
            [
                (RESOLVE, ERROR, "removed", Quiet.REMOVED),
                (RESOLVE, STUCK, "removed", Quiet.REMOVED),
                (OPEN, REMOVED, "", ""),
            ],
            id="removed-resolves-others",
        ),
        pytest.param(
            [live(REMOVED)],
            [reappeared("SYNCED")],
            [(RESOLVE, REMOVED, "healthy", "")],
            id="reappeared-resolves-removed",
        ),
        pytest.param(
            [live(REMOVED)],
            [reappeared("ERROR")],
            [(RESOLVE, REMOVED, "healthy", ""), (OPEN, ERROR, "", "")],
            id="reappeared-in-error",
        ),
        pytest.param(
            [live(ERROR, connection=8)], [status("SYNCED", "CONNECTED")], [], id="other-connection"
        ),
    ],
)
def test_status_transitions(issues, changes, expected):
    assert summary(run(changes, issues)) == expected


def test_an_error_issue_says_its_error_reason():
    (opened,) = run([status("SYNCED", "ERROR")])
    assert opened.detail == "TOKEN_REVOKED"
    assert opened.notifies

    changes = [status("SYNCED", "ERROR"), reason("", "EXTERNAL_CALENDAR_DELETED", pk=101)]
    (opened,) = run(changes)
    assert opened.detail == "EXTERNAL_CALENDAR_DELETED"


def test_a_detail_update_notifies_no_one():
    (update,) = run([reason("TOKEN_REVOKED", "UNDEFINED")], [live(ERROR, detail="TOKEN_REVOKED")])
    assert (update.detail, update.issue_id, update.notifies) == ("UNDEFINED", 1, False)


def test_every_transition_names_its_change_and_run():
    result = run([status("ERROR", "DISCONNECTED", pk=555)], [live(ERROR)])
    assert [(t.change_id, t.run_id) for t in result] == [(555, 9), (555, 9)]


def test_changes_of_several_connections_are_ruled_apart():
    changes = [status("SYNCED", "ERROR", connection=1), status("ERROR", "SYNCED", connection=2)]
    issues = [live(ERROR, connection=2)]
    result = run(changes, issues, error_reasons={1: "TOKEN_REVOKED"})
    assert [(t.action, t.connection_id) for t in result] == [(OPEN, 1), (RESOLVE, 2)]


def test_removed_then_reappeared():
    issues = [live(ERROR)]
    issues = after(issues, run([removed("ERROR")], issues), NOW)
    assert {(i.kind, i.state) for i in issues} == {(ERROR, "resolved"), (REMOVED, "open")}

    later = NOW + H
    result = run([reappeared("SYNCED")], issues, now=later)
    assert summary(result) == [(RESOLVE, REMOVED, "healthy", "")]
    assert result[0].notifies


def test_removed_again_soon_reopens_the_removed_issue():
    result = run([removed("SYNCED")], [resolved(REMOVED, ago=2 * H)])
    assert summary(result) == [(REOPEN, REMOVED, "", "")]


# --- Reopen --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ago", "action"),
    [(1 * H, REOPEN), (23 * H, REOPEN), (24 * H, REOPEN), (25 * H, OPEN)],
)
def test_the_same_problem_within_the_window_reopens(ago, action):
    earlier = resolved(ERROR, ago=ago, occurrences=2, opened_at=NOW - ago - H)
    (t,) = run([status("SYNCED", "ERROR")], [earlier])
    assert t.action == action
    if action == REOPEN:
        assert (t.issue_id, t.occurrences, t.state) == (1, 3, "open")
    else:
        assert (t.issue_id, t.occurrences) == (None, 1)


def test_another_kind_resolved_lately_does_not_reopen():
    (t,) = run([status("SYNCED", "ERROR")], [resolved(DISCONNECTED, ago=H)])
    assert (t.action, t.kind) == (OPEN, ERROR)


def test_a_live_issue_is_preferred_to_a_resolved_one_of_its_kind():
    issues = [resolved(ERROR, ago=H, id=1), live(ERROR, id=2)]
    (t,) = run([status("ERROR", "SYNCED")], issues)
    assert (t.action, t.issue_id) == (RESOLVE, 2)


# --- Flapping ------------------------------------------------------------------------------


def test_the_third_opening_within_six_hours_flaps_until_healthy_six_hours():
    issues: list[IssueFacts] = []
    told = []
    # Breaks at 0, 2 h, 4 h and mends in between: the third opening flaps.
    for hour, changes in [
        (0, [status("SYNCED", "ERROR")]),
        (1, [status("ERROR", "SYNCED")]),
        (2, [status("SYNCED", "ERROR")]),
        (3, [status("ERROR", "SYNCED")]),
        (4, [status("SYNCED", "ERROR")]),
        (5, [status("ERROR", "SYNCED")]),
    ]:
        now = NOW + hour * H
        result = run(changes, issues, now=now)
        issues = after(issues, result, now)
        told += [(hour, t.action, t.notifies, t.flapping) for t in result]
    assert told == [
        (0, OPEN, True, False),
        (1, RESOLVE, True, False),
        (2, REOPEN, True, False),
        (3, RESOLVE, True, False),
        (4, REOPEN, False, True),  # the third opening: quiet from now on
        (5, RESOLVE, False, True),  # its recovery is the sweep's to tell
    ]
    (issue,) = issues
    assert len(issue.recent_openings) == 3
    assert (issue.occurrences, issue.flapping) == (3, True)

    # Healthy since 5 h: flapping ends at 11 h, not before.
    assert not flapping_ended(issue, NOW + 10 * H, RULES)
    assert flapping_ended(issue, NOW + 11 * H, RULES)

    # Breaking again before that stays quiet.
    (t,) = run([status("SYNCED", "ERROR")], [issue], now=NOW + 7 * H)
    assert (t.action, t.flapping, t.quiet) == (REOPEN, True, Quiet.FLAPPING)

    # After it, the issue reopens and tells again, its count of openings started afresh.
    (t,) = run([status("SYNCED", "ERROR")], [issue], now=NOW + 12 * H)
    assert (t.action, t.flapping, t.notifies) == (REOPEN, False, True)
    assert t.recent_openings == (NOW + 12 * H,)


def test_openings_older_than_six_hours_do_not_count():
    opened = (NOW - 7 * H, NOW - 5 * H)
    (t,) = run([status("SYNCED", "ERROR")], [resolved(ERROR, ago=H, recent_openings=opened)])
    assert (t.flapping, t.recent_openings) == (False, (NOW - 5 * H, NOW))


def test_a_live_issue_is_not_flapping_ended():
    assert not flapping_ended(live(ERROR, flapping=True), NOW, RULES)


# --- Muted ---------------------------------------------------------------------------------


def test_a_muted_issue_resolves_quietly():
    muted = replace(live(ERROR), state=IssueState.MUTED, muted_until=NOW + H)
    (t,) = run([status("ERROR", "SYNCED")], [muted])
    assert (t.action, t.quiet) == (RESOLVE, Quiet.MUTED)


def test_a_muted_issue_keeps_its_mute_on_a_detail_change():
    muted = replace(live(ERROR, detail="TOKEN_REVOKED"), state="muted", muted_until=NOW + H)
    (t,) = run([reason("TOKEN_REVOKED", "UNDEFINED")], [muted])
    assert (t.action, t.state, t.notifies) == (UPDATE, "muted", False)


@pytest.mark.parametrize(
    ("muted_until", "state", "quiet"),
    [(NOW + H, "muted", Quiet.MUTED), (NOW - H, "open", ""), (None, "open", "")],
)
def test_reopened_during_its_mute_the_issue_stays_muted(muted_until, state, quiet):
    earlier = resolved(ERROR, ago=2 * H, muted_until=muted_until)
    (t,) = run([status("SYNCED", "ERROR")], [earlier])
    assert (t.action, t.state, t.quiet) == (REOPEN, state, quiet)


# --- Baseline ------------------------------------------------------------------------------


def test_a_first_import_opens_its_issues_quietly():
    changes = [appeared("ERROR", connection=1), appeared("DISCONNECTED", connection=2)]
    changes.append(appeared("SYNCED", connection=3))
    result = run(changes, baseline=True, error_reasons={1: "TOKEN_REVOKED"})
    assert [(t.action, t.kind, t.baseline, t.quiet) for t in result] == [
        (OPEN, ERROR, True, Quiet.BASELINE),
        (OPEN, DISCONNECTED, True, Quiet.BASELINE),
    ]


def test_a_baseline_issue_resolves_quietly_and_a_later_break_tells():
    (t,) = run([status("ERROR", "SYNCED")], [live(ERROR, baseline=True)])
    assert (t.action, t.quiet) == (RESOLVE, Quiet.BASELINE)

    (t,) = run([status("SYNCED", "ERROR")], [resolved(ERROR, ago=H, baseline=True)])
    assert (t.action, t.baseline, t.notifies) == (REOPEN, False, True)


# --- The portal's own disconnect -----------------------------------------------------------


@pytest.mark.parametrize(
    ("issues", "changes", "expected"),
    [
        pytest.param([], [status("SYNCED", "DISCONNECTED")], [], id="opens-nothing"),
        pytest.param(
            [live(ERROR)],
            [status("ERROR", "DISCONNECTED")],
            [(RESOLVE, ERROR, "portal_action", Quiet.PORTAL_ACTION)],
            id="resolves-the-error",
        ),
        pytest.param(
            [live(DISCONNECTED)],
            [status("ERROR", "DISCONNECTED")],
            [(RESOLVE, DISCONNECTED, "portal_action", Quiet.PORTAL_ACTION)],
            id="resolves-a-racing-refresh-issue",
        ),
    ],
)
def test_the_portals_disconnect(issues, changes, expected):
    assert summary(run(changes, issues, cause=Cause.DISCONNECT)) == expected


def test_an_action_that_sees_an_error_still_opens_it():
    (t,) = run([status("SYNCED", "ERROR")], cause=Cause.DISCONNECT)
    assert (t.action, t.kind, t.notifies) == (OPEN, ERROR, True)


# --- Tenant rules --------------------------------------------------------------------------

F = RunFacts(id=3, outcome="failed", error_code="WIX_UNAVAILABLE")
REFUSED = RunFacts(id=3, outcome="failed", error_code="UNAUTHORIZED", credentials_refused=True)
OK = RunFacts(id=2, outcome="ok")


def tenant_issue(kind, **fields) -> IssueFacts:
    return live(kind, connection=None, **fields)


@pytest.mark.parametrize(
    ("runs", "issues", "expected"),
    [
        pytest.param([F, F, F], [], [(OPEN, FAILING, "WIX_UNAVAILABLE")], id="three-in-a-row"),
        pytest.param([F, F], [], [], id="two-only"),
        pytest.param([F, F, OK], [], [], id="a-success-between"),
        pytest.param([F, F, F, OK], [], [(OPEN, FAILING, "WIX_UNAVAILABLE")], id="after-ok"),
        pytest.param([REFUSED], [], [(OPEN, CREDENTIALS, "UNAUTHORIZED")], id="refused-at-once"),
        pytest.param(
            [REFUSED, F, F], [], [(OPEN, CREDENTIALS, "UNAUTHORIZED")], id="refused-only-creds"
        ),
        pytest.param([F, REFUSED, F], [], [(OPEN, FAILING, "WIX_UNAVAILABLE")], id="then-other"),
        pytest.param(
            [F, F, F], [tenant_issue(FAILING, detail="WIX_UNAVAILABLE")], [], id="already-open"
        ),
        pytest.param(
            [F, F, F],
            [tenant_issue(FAILING, detail="RATE_LIMITED")],
            [(UPDATE, FAILING, "WIX_UNAVAILABLE")],
            id="new-code-updates",
        ),
        pytest.param(
            [F, F, F],
            [resolved(FAILING, ago=H, connection=None)],
            [(REOPEN, FAILING, "WIX_UNAVAILABLE")],
            id="reopens",
        ),
        pytest.param([OK, F, F], [], [], id="latest-not-failed"),
        pytest.param([], [], [], id="no-runs"),
    ],
)
def test_failed_runs(runs, issues, expected):
    result = failed_run_transitions(runs, issues, now=NOW, rules=RULES)
    assert [(t.action, t.kind, t.detail) for t in result] == expected
    assert all(t.connection_id is None and t.run_id == 3 for t in result)


def test_the_number_of_failures_is_a_setting():
    rules = replace(RULES, refresh_failures=5)
    assert failed_run_transitions([F] * 4, [], now=NOW, rules=rules) == ()
    assert len(failed_run_transitions([F] * 5, [], now=NOW, rules=rules)) == 1


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        ("ok", [(RESOLVE, FAILING, "healthy"), (RESOLVE, CREDENTIALS, "healthy")]),
        ("partial", [(RESOLVE, FAILING, "healthy"), (RESOLVE, CREDENTIALS, "healthy")]),
        ("failed", []),
    ],
)
def test_a_success_resolves_the_tenant_issues(outcome, expected):
    issues = [
        tenant_issue(FAILING),
        tenant_issue(CREDENTIALS, id=2),
        tenant_issue(IssueKind.TENANT_STALE, id=3),  # the sweep's
        live(ERROR, id=4),  # a connection's: not a run's to resolve
    ]
    result = succeeded_run_transitions(
        RunFacts(id=8, outcome=outcome), issues, now=NOW, rules=RULES
    )
    assert [(t.action, t.kind, t.resolution) for t in result] == expected
    assert all(t.run_id == 8 and t.notifies for t in result)


def test_a_success_without_tenant_issues_does_nothing():
    assert succeeded_run_transitions(OK, [], now=NOW, rules=RULES) == ()


def test_rules_read_the_settings(settings):
    settings.ISSUE_REOPEN_HOURS = 2
    settings.ISSUE_REFRESH_FAILURES = 4
    assert Rules.from_settings() == Rules(reopen_within=2 * H, refresh_failures=4)


def test_facts_of_an_issue_row_read_its_iso_openings():
    class Row:
        pk, kind, connection_id, state, opened_at = 5, ERROR, CONN, "open", NOW
        resolved_at, detail, occurrences, muted_until = None, "", 1, None
        recent_openings, flapping, baseline = [NOW.isoformat()], False, False

    assert IssueFacts.of(Row()).recent_openings == (NOW,)
