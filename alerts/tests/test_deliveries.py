"""Signed deliveries to a real receiver that verifies every signature, through its faults.

Time moves by `send_due(now=...)`: the schedule decides when a retry is due, while each
attempt is signed with the real time, which the receiver checks.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from alerts.models import Delivery, DisabledReason, WebhookEndpoint
from alerts.services import deliveries, endpoints
from alerts.tests.builders import attempts_of, make_endpoint, send_test
from alerts.tests.conftest import REFUSED_URL
from tenants.models import Via

pytestmark = pytest.mark.django_db

SCHEDULE = [5, 300, 1800, 7200, 18000, 36000, 36000]


@pytest.fixture
def endpoint(staff, webhook_receiver):
    endpoint, secret = make_endpoint(staff, webhook_receiver.url, description="Ops receiver")
    webhook_receiver.secrets = [secret]
    return endpoint


def test_a_test_event_is_delivered_at_once_signed_and_enveloped(
    endpoint, webhook_receiver, django_capture_on_commit_callbacks
):
    delivery = send_test(endpoint, django_capture_on_commit_callbacks)

    (received,) = webhook_receiver.received
    assert received.msg_id == delivery.msg_id
    assert received.msg_id.startswith("msg_")
    assert received.body == delivery.body
    assert received.headers["content-type"] == "application/json"
    payload = received.payload
    assert set(payload) == {"type", "timestamp", "version", "id", "data"}
    assert (payload["type"], payload["version"], payload["id"]) == (
        "webhook.test",
        "2026-01",
        delivery.msg_id,
    )
    assert payload["timestamp"].endswith("Z")
    assert payload["data"]["endpoint"] == {"id": endpoint.pk, "description": "Ops receiver"}
    assert (delivery.state, delivery.attempts, delivery.last_status) == ("succeeded", 1, 200)
    attempt = delivery.attempt_log.get()
    assert (attempt.number, attempt.status_code, attempt.error, attempt.response_excerpt) == (
        1,
        200,
        "",
        "ok",
    )
    assert attempt.retry_at is None


def test_a_first_attempt_no_worker_made_is_sent_by_the_sweep(endpoint, webhook_receiver):
    # No on-commit callbacks run: as if the queued task were lost.
    delivery = endpoints.endpoint_send_test(endpoint, user=endpoint.owner, via=Via.API)
    assert webhook_receiver.received == []

    assert deliveries.send_due() == 1

    assert [r.msg_id for r in webhook_receiver.received] == [delivery.msg_id]
    assert Delivery.objects.get().state == "succeeded"


def test_a_500_is_retried_through_the_whole_schedule_then_fails(
    endpoint, webhook_receiver, settings, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_RETRY_SCHEDULE_SECONDS = SCHEDULE
    webhook_receiver.answer(500, times=len(SCHEDULE) + 1, body="broken")
    delivery = send_test(endpoint, django_capture_on_commit_callbacks)

    for _ in SCHEDULE:
        due = delivery.next_attempt_at
        assert deliveries.send_due(now=due - timedelta(seconds=1)) == 0
        assert deliveries.send_due(now=due) == 1
        delivery.refresh_from_db()

    assert (delivery.state, delivery.attempts, delivery.next_attempt_at) == ("failed", 8, None)
    assert deliveries.send_due(now=timezone.now() + timedelta(days=30)) == 0
    attempts = list(delivery.attempt_log.order_by("number"))
    waits = [
        a.retry_at - a.started_at - timedelta(milliseconds=a.duration_ms) if a.retry_at else None
        for a in attempts
    ]
    assert waits == [timedelta(seconds=s) for s in SCHEDULE] + [None]
    assert {(a.status_code, a.response_excerpt) for a in attempts} == {(500, "broken")}
    # The same webhook-id and body on every attempt, each signed (and verified) with the real
    # time, not the schedule's hours ahead.
    assert len(webhook_receiver.received) == 8
    assert {(r.msg_id, r.body) for r in webhook_receiver.received} == {
        (delivery.msg_id, delivery.body)
    }
    now = timezone.now().timestamp()
    assert all(
        abs(int(r.headers["webhook-timestamp"]) - now) < 60 for r in webhook_receiver.received
    )
    endpoint.refresh_from_db()
    assert endpoint.is_enabled
    assert endpoint.failing_since == attempts[0].started_at


def test_jitter_spreads_a_retry_within_its_share(
    endpoint, webhook_receiver, settings, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_RETRY_SCHEDULE_SECONDS = [1000]
    settings.WEBHOOK_RETRY_JITTER = 0.1
    webhook_receiver.answer(500, times=20)
    waits = set()
    for _ in range(20):
        delivery = send_test(endpoint, django_capture_on_commit_callbacks)
        attempt = delivery.attempt_log.get()
        wait = attempt.retry_at - attempt.started_at - timedelta(milliseconds=attempt.duration_ms)
        assert timedelta(seconds=900) <= wait <= timedelta(seconds=1100)
        waits.add(wait)
    assert len(waits) > 1


def test_a_refused_connection_is_retried(
    staff, webhook_receiver, django_capture_on_commit_callbacks
):
    endpoint, _ = make_endpoint(staff, REFUSED_URL)

    delivery = send_test(endpoint, django_capture_on_commit_callbacks)

    assert attempts_of(delivery) == [(1, None, "refused")]
    assert (delivery.state, delivery.last_status) == ("pending", None)
    assert delivery.next_attempt_at > timezone.now()


def test_a_stall_past_the_timeout_is_a_timeout_and_retried(
    endpoint, webhook_receiver, settings, django_capture_on_commit_callbacks
):
    assert settings.WEBHOOK_TIMEOUT_SECONDS == 1.0
    webhook_receiver.stall(2.0)

    delivery = send_test(endpoint, django_capture_on_commit_callbacks)

    attempt = delivery.attempt_log.get()
    assert (attempt.status_code, attempt.error) == (None, "timeout")
    assert 1000 <= attempt.duration_ms < 1900
    assert delivery.state == "pending"

    assert deliveries.send_due(now=delivery.next_attempt_at) == 1
    delivery.refresh_from_db()
    assert attempts_of(delivery) == [(1, None, "timeout"), (2, 200, "")]
    assert delivery.state == "succeeded"
    assert [r.msg_id for r in webhook_receiver.received] == [delivery.msg_id] * 2


def test_a_redirect_is_not_followed_and_is_retried(
    endpoint, webhook_receiver, django_capture_on_commit_callbacks
):
    webhook_receiver.redirect()

    delivery = send_test(endpoint, django_capture_on_commit_callbacks)

    assert attempts_of(delivery) == [(1, 302, "redirect")]
    assert webhook_receiver.elsewhere == []
    assert delivery.state == "pending"
    assert deliveries.send_due(now=delivery.next_attempt_at) == 1
    delivery.refresh_from_db()
    assert delivery.state == "succeeded"
    assert webhook_receiver.elsewhere == []


@pytest.mark.parametrize(
    ("status", "retry_after", "wait"),
    [
        (429, "120", 120),
        (503, "120", 120),
        (429, "1", 5),  # shorter than the schedule's wait: the schedule's
        (429, "999999", 36000),  # capped by WEBHOOK_RETRY_AFTER_MAX_SECONDS
        (500, "120", 5),  # only 429 and 503 are asked to wait
    ],
)
def test_retry_after_on_429_and_503_is_honoured_and_capped(
    endpoint, webhook_receiver, status, retry_after, wait, django_capture_on_commit_callbacks
):
    webhook_receiver.answer(status, headers={"Retry-After": retry_after})

    delivery = send_test(endpoint, django_capture_on_commit_callbacks)

    attempt = delivery.attempt_log.get()
    assert attempt.status_code == status
    assert attempt.retry_at - attempt.started_at - timedelta(
        milliseconds=attempt.duration_ms
    ) == timedelta(seconds=wait)
    assert delivery.next_attempt_at == attempt.retry_at


def test_retry_after_as_an_http_date(
    endpoint, webhook_receiver, django_capture_on_commit_callbacks
):
    when = timezone.now() + timedelta(minutes=10)
    webhook_receiver.answer(
        503, headers={"Retry-After": when.strftime("%a, %d %b %Y %H:%M:%S GMT")}
    )

    delivery = send_test(endpoint, django_capture_on_commit_callbacks)

    assert abs(delivery.next_attempt_at - when) < timedelta(seconds=3)


def test_410_turns_the_endpoint_off_cancels_its_pending_and_emails_the_owner(
    endpoint, webhook_receiver, settings, smtp_server, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_SENDER_THREADS = 1
    webhook_receiver.answer(500, times=2)
    first = send_test(endpoint, django_capture_on_commit_callbacks)
    second = send_test(endpoint, django_capture_on_commit_callbacks)
    webhook_receiver.answer(410, body="gone for good")

    assert deliveries.send_due(now=second.next_attempt_at) == 1

    first.refresh_from_db()
    second.refresh_from_db()
    assert attempts_of(first) == [(1, 500, ""), (2, 410, "")]
    assert (first.state, first.next_attempt_at) == ("failed", None)
    assert (second.state, second.next_attempt_at) == ("cancelled", None)
    endpoint.refresh_from_db()
    assert (endpoint.is_enabled, endpoint.disabled_reason) == (False, DisabledReason.GONE)
    (mail,) = smtp_server.wait_for(1)
    assert mail["To"] == "olga@agency.test"
    assert mail["Subject"] == "Webhook endpoint turned off: Ops receiver"
    assert "it answered 410 Gone" in mail.get_content()
    assert deliveries.send_due(now=timezone.now() + timedelta(days=1)) == 0
    assert len(webhook_receiver.received) == 3


def test_five_days_of_only_failures_turn_the_endpoint_off_and_email_its_owner(
    endpoint, webhook_receiver, settings, smtp_server, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_RETRY_SCHEDULE_SECONDS = [86400] * 7
    webhook_receiver.answer(500, times=10)
    delivery = send_test(endpoint, django_capture_on_commit_callbacks)
    started = delivery.attempt_log.get().started_at

    for _day in range(4):
        assert deliveries.send_due(now=delivery.next_attempt_at) == 1
        delivery.refresh_from_db()
    endpoint.refresh_from_db()
    assert (endpoint.is_enabled, endpoint.failing_since) == (True, started)
    assert smtp_server.messages == []

    assert deliveries.send_due(now=delivery.next_attempt_at) == 1

    delivery.refresh_from_db()
    endpoint.refresh_from_db()
    assert (endpoint.is_enabled, endpoint.disabled_reason) == (False, DisabledReason.FAILING)
    assert (delivery.state, delivery.attempts, delivery.next_attempt_at) == ("cancelled", 6, None)
    (mail,) = smtp_server.wait_for(1)
    assert mail["Subject"] == "Webhook endpoint turned off: Ops receiver"
    assert f"every attempt since {started:%Y-%m-%d %H:%M} UTC has failed, for 5 days" in (
        mail.get_content().replace("\n", " ")
    )


def test_a_success_resets_the_failing_clock(
    endpoint, webhook_receiver, django_capture_on_commit_callbacks
):
    webhook_receiver.answer(500)
    delivery = send_test(endpoint, django_capture_on_commit_callbacks)
    assert WebhookEndpoint.objects.get().failing_since is not None

    deliveries.send_due(now=delivery.next_attempt_at)

    assert WebhookEndpoint.objects.get().failing_since is None


def test_a_worker_stopped_mid_send_loses_nothing_and_its_late_result_is_dropped(
    endpoint, webhook_receiver, settings, caplog
):
    delivery = endpoints.endpoint_send_test(endpoint, user=endpoint.owner, via=Via.ADMIN)
    now = timezone.now()
    (stopped,) = deliveries.claim(now, limit=10)
    # Leased: a second worker sweeping at the same moment finds nothing to send.
    assert deliveries.send_due(now=now) == 0

    later = now + timedelta(seconds=settings.WEBHOOK_LEASE_SECONDS + 1)
    assert deliveries.send_due(now=later) == 1

    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts) == ("succeeded", 2)
    assert attempts_of(delivery) == [(2, 200, "")]
    # The first worker comes back with a result: the lease is no longer its own.
    late = deliveries.attempt(stopped)
    assert deliveries.record(stopped, late, at=later) is False
    assert attempts_of(delivery) == [(2, 200, "")]
    assert "attempt 1 finished after its lease was lost; result dropped" in caplog.text
    assert [r.msg_id for r in webhook_receiver.received] == [delivery.msg_id] * 2
