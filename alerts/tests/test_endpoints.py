"""Endpoint verbs: input refused with field errors (the SSRF guard among them), the owner's
tenant access as the bound, secrets shown once and rotated, replays, each audited."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from alerts.models import Delivery, WebhookEndpoint, WebhookSecret
from alerts.services import deliveries, endpoints
from alerts.tests.builders import attempts_of, make_endpoint, send_test
from alerts.webhooks import guard
from tenants.models import AuditEvent, Role, TenantMembership, Via
from tenants.tests.factories import TenantFactory

pytestmark = pytest.mark.django_db

NOT_PUBLIC = (
    "Webhooks go to public addresses only: this host is, or resolves to, a private, "
    "loopback, link-local or reserved address."
)


def errors_of(excinfo) -> dict[str, list[str]]:
    return excinfo.value.message_dict


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "http://hooks.example.com/portal",
            "Use an https:// URL: webhooks are sent over TLS only.",
        ),
        ("ftp://hooks.example.com/portal", "Use an https:// URL: webhooks are sent over TLS only."),
        ("https://10.0.0.1/hook", NOT_PUBLIC),
        ("https://169.254.169.254/latest/meta-data/", NOT_PUBLIC),
        ("https://[::1]/hook", NOT_PUBLIC),
        ("https://[::ffff:127.0.0.1]/hook", NOT_PUBLIC),
        ("https://100.64.0.1/hook", NOT_PUBLIC),
        ("https://0.0.0.0/hook", NOT_PUBLIC),
        ("https://224.0.0.1/hook", NOT_PUBLIC),
        ("https://2130706433/hook", NOT_PUBLIC),  # 127.0.0.1 spelled as one number
        ("https://", "Enter a URL with a host name, such as https://hooks.example.com/portal."),
        ("hooks.example.com", "Use an https:// URL: webhooks are sent over TLS only."),
        (
            "https://user:pw@hooks.example.com/portal",
            "Leave the user name and password out of the URL; the receiver checks the "
            "signature (or takes a token in the path).",
        ),
        ("https://hooks.example.com:99999/", "Enter a port between 1 and 65535."),
        (
            "https://[::1/hook",
            "Enter a URL with a host name, such as https://hooks.example.com/portal.",
        ),
    ],
)
def test_a_url_webhooks_may_not_reach_is_a_field_error(staff, settings, url, message):
    settings.WEBHOOK_ALLOW_HOSTS = []
    with pytest.raises(ValidationError) as excinfo:
        make_endpoint(staff, url)

    assert errors_of(excinfo) == {"url": [message]}
    assert not WebhookEndpoint.objects.exists()
    assert not AuditEvent.objects.exists()


def test_a_host_that_does_not_resolve_is_a_field_error(staff):
    with pytest.raises(ValidationError) as excinfo:
        make_endpoint(staff, "https://no-such-host.invalid/hook")

    assert errors_of(excinfo) == {
        "url": ["This host name does not resolve; check it, or try again once its DNS is set up."]
    }


def test_a_name_resolving_to_loopback_is_refused_unless_allowed_by_name(staff, settings):
    settings.WEBHOOK_ALLOW_HOSTS = ["127.0.0.1"]
    with pytest.raises(ValidationError) as excinfo:
        make_endpoint(staff, "https://localhost:8443/hook")
    assert errors_of(excinfo) == {"url": [NOT_PUBLIC]}
    # Allowed hosts may use http://; others may not, even on an allowed address.
    with pytest.raises(ValidationError):
        make_endpoint(staff, "http://localhost:8443/hook")
    endpoint, _ = make_endpoint(staff, "http://127.0.0.1:8443/hook")
    assert endpoint.url == "http://127.0.0.1:8443/hook"


def test_a_name_rebound_to_loopback_is_refused_at_connect_time(
    staff, webhook_receiver, settings, django_capture_on_commit_callbacks
):
    port = webhook_receiver.server.port
    settings.WEBHOOK_ALLOW_HOSTS = ["127.0.0.1", "localhost"]
    endpoint, secret = make_endpoint(staff, f"https://localhost:{port}/hook")
    webhook_receiver.secrets = [secret]
    # As if its DNS now pointed somewhere the URL check never saw: only the guard stands.
    settings.WEBHOOK_ALLOW_HOSTS = ["127.0.0.1"]

    delivery = send_test(endpoint, django_capture_on_commit_callbacks)

    assert attempts_of(delivery) == [(1, None, "blocked_address")]
    assert webhook_receiver.received == []
    assert delivery.state == "pending"


def test_guard_refuses_any_private_address_among_public_ones():
    assert guard.is_public("93.184.216.34")
    assert guard.is_public("2606:2800:220:1:248:1893:25c8:1946")
    for address in (
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "::1",
        "fe80::1%eth0",
        "fc00::1",
        "::ffff:10.0.0.1",
        "ff02::1",
        "nonsense",
    ):
        assert not guard.is_public(address), address


def test_unknown_event_types_and_foreign_tenants_are_field_errors(staff):
    mine, foreign = TenantFactory(), TenantFactory()
    TenantMembership.objects.create(user=staff, tenant=mine, role=Role.VIEWER)

    with pytest.raises(ValidationError) as excinfo:
        make_endpoint(
            staff,
            "http://127.0.0.1:8443/hook",
            event_types=["connection.broken", "connection.exploded", "webhook.test"],
            tenant_ids=[mine.pk, foreign.pk, 999999],
        )

    errors = errors_of(excinfo)
    assert errors["event_types"] == [
        "Unknown event type: connection.exploded, webhook.test. Choose from connection.broken, "
        "connection.recovered, connection.disconnected, connection.removed, connection.stuck, "
        "tenant.refresh_failing, tenant.recovered, tenant.credentials_invalid, tenant.stale, "
        "incident.opened, incident.resolved, issue.muted."
    ]
    # A tenant the owner cannot see reads exactly like one that does not exist.
    assert errors["tenants"] == [f"No such tenant: {foreign.pk}, 999999."]


def test_an_endpoint_with_only_a_url_gets_everything_its_owner_sees(staff):
    endpoint, secret = make_endpoint(staff, "http://127.0.0.1:8443/hook")

    assert (endpoint.event_types, list(endpoint.tenants.all()), endpoint.is_enabled) == (
        [],
        [],
        True,
    )
    assert endpoint.receives("connection.broken") and endpoint.receives("issue.muted")
    assert secret.startswith("whsec_") and len(secret) == len("whsec_") + 44
    Webhook(secret)  # a secret the package takes
    (stored,) = WebhookSecret.objects.filter(endpoint=endpoint)
    assert stored.expires_at is None
    event = AuditEvent.objects.get(action="create_webhook_endpoint")
    assert (event.username, event.via, event.tenant, event.target_id) == (
        "olga",
        "admin",
        None,
        str(endpoint.pk),
    )
    assert event.parameters == {
        "owner": "olga",
        "url": "http://127.0.0.1:8443/…",
        "description": "",
        "event_types": [],
        "tenants": [],
        "is_enabled": True,
    }


def test_update_audits_what_changed_and_turning_off_cancels_pending(staff):
    tenant = TenantFactory()
    TenantMembership.objects.create(user=staff, tenant=tenant, role=Role.OPERATOR)
    endpoint, _ = make_endpoint(staff, "http://127.0.0.1:9/hook")
    pending = endpoints.endpoint_send_test(endpoint, user=staff, via=Via.API)

    saved = endpoints.endpoint_update(
        endpoint,
        description="Ops",
        event_types=["connection.broken"],
        tenant_ids=[tenant.pk],
        is_enabled=False,
        user=staff,
        via=Via.API,
    )

    assert (saved.is_enabled, saved.disabled_reason) == (False, "manual")
    assert list(saved.tenants.all()) == [tenant]
    pending.refresh_from_db()
    assert pending.state == "cancelled"
    event = AuditEvent.objects.get(action="update_webhook_endpoint")
    assert event.changes == {
        "description": ["", "Ops"],
        "event_types": [[], ["connection.broken"]],
        "tenants": [[], [tenant.pk]],
        "is_enabled": [True, False],
    }
    with pytest.raises(endpoints.Refused, match="turned off"):
        endpoints.endpoint_send_test(saved, user=staff, via=Via.API)

    again = endpoints.endpoint_update(saved, is_enabled=True, user=staff, via=Via.API)
    assert (again.is_enabled, again.disabled_reason, again.disabled_at) == (True, "", None)


def test_rotation_signs_with_both_secrets_for_24_hours_then_the_new_only(
    staff, webhook_receiver, settings, django_capture_on_commit_callbacks
):
    endpoint, old = make_endpoint(staff, webhook_receiver.url)
    webhook_receiver.secrets = [old]
    send_test(endpoint, django_capture_on_commit_callbacks)

    new = endpoints.endpoint_rotate_secret(endpoint, user=staff, via=Via.ADMIN)
    assert new != old and new.startswith("whsec_")
    # Both must verify each request now (the receiver checks every secret it is given).
    webhook_receiver.secrets = [old, new]
    settings.WEBHOOK_RETRY_SCHEDULE_SECONDS = [25 * 3600]
    webhook_receiver.answer(500)
    delivery = send_test(endpoint, django_capture_on_commit_callbacks)
    assert len(webhook_receiver.received[-1].headers["webhook-signature"].split(" ")) == 2

    webhook_receiver.secrets = [new]
    assert deliveries.send_due(now=delivery.next_attempt_at) == 1

    last = webhook_receiver.received[-1]
    assert last.msg_id == delivery.msg_id
    assert len(last.headers["webhook-signature"].split(" ")) == 1
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(last.body, last.headers)
    rotated = AuditEvent.objects.get(action="rotate_webhook_secret")
    assert set(rotated.parameters) == {"previous_valid_until"}


def test_a_second_rotation_deletes_expired_secrets(staff):
    endpoint, _ = make_endpoint(staff, "http://127.0.0.1:8443/hook")
    start = timezone.now()
    endpoints.endpoint_rotate_secret(endpoint, user=staff, via=Via.ADMIN, now=start)
    later = start + timedelta(hours=25)
    endpoints.endpoint_rotate_secret(endpoint, user=staff, via=Via.ADMIN, now=later)

    secrets = list(WebhookSecret.objects.filter(endpoint=endpoint).order_by("created_at"))
    assert [s.expires_at for s in secrets] == [later + timedelta(hours=24), None]


def test_a_replay_keeps_the_webhook_id_and_the_bytes(
    staff, webhook_receiver, django_capture_on_commit_callbacks
):
    endpoint, secret = make_endpoint(staff, webhook_receiver.url)
    webhook_receiver.secrets = [secret]
    original = send_test(endpoint, django_capture_on_commit_callbacks)

    with django_capture_on_commit_callbacks(execute=True):
        replay = endpoints.delivery_replay(original, user=staff, via=Via.ADMIN)

    first, second = webhook_receiver.received
    assert second.msg_id == first.msg_id == original.msg_id
    assert second.body == first.body == original.body
    replay.refresh_from_db()
    assert (replay.replay_of, replay.state) == (original, "succeeded")
    event = AuditEvent.objects.get(action="replay_webhook_delivery")
    assert event.parameters == {
        "delivery": original.pk,
        "replay": replay.pk,
        "webhook_id": original.msg_id,
    }


def test_a_pending_delivery_is_not_replayed(staff):
    endpoint, _ = make_endpoint(staff, "http://127.0.0.1:9/hook")
    pending = endpoints.endpoint_send_test(endpoint, user=staff, via=Via.API)

    with pytest.raises(endpoints.Refused, match="still being attempted"):
        endpoints.delivery_replay(pending, user=staff, via=Via.API)


def test_replay_failed_since_resends_each_failed_or_cancelled_once(
    staff, webhook_receiver, settings, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_RETRY_SCHEDULE_SECONDS = []
    endpoint, secret = make_endpoint(staff, webhook_receiver.url)
    webhook_receiver.secrets = [secret]
    webhook_receiver.answer(500, times=2)
    old = send_test(endpoint, django_capture_on_commit_callbacks)
    Delivery.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=2))
    failed = send_test(endpoint, django_capture_on_commit_callbacks)
    ok = send_test(endpoint, django_capture_on_commit_callbacks)
    assert [old.state, failed.state, ok.state] == ["failed", "failed", "succeeded"]

    since = timezone.now() - timedelta(days=1)
    with django_capture_on_commit_callbacks(execute=True):
        replays = endpoints.deliveries_replay_failed(
            endpoint, since=since, user=staff, via=Via.ADMIN
        )

    assert [r.replay_of_id for r in replays] == [failed.pk]
    assert webhook_receiver.received[-1].msg_id == failed.msg_id
    assert Delivery.objects.get(pk=replays[0].pk).state == "succeeded"
    # Replayed already: a second request finds nothing more to do.
    with django_capture_on_commit_callbacks(execute=True):
        assert (
            endpoints.deliveries_replay_failed(endpoint, since=since, user=staff, via=Via.ADMIN)
            == []
        )
    events = AuditEvent.objects.filter(action="replay_failed_webhooks").order_by("id")
    assert [e.parameters["replays"] for e in events] == [1, 0]


def test_delete_removes_the_endpoint_its_secrets_and_log(staff, django_capture_on_commit_callbacks):
    endpoint, _ = make_endpoint(staff, "http://127.0.0.1:9/hook")
    send_test(endpoint, django_capture_on_commit_callbacks)

    endpoints.endpoint_delete(endpoint, user=staff, via=Via.ADMIN)

    assert not WebhookEndpoint.objects.exists()
    assert not WebhookSecret.objects.exists()
    assert not Delivery.objects.exists()
    assert AuditEvent.objects.filter(action="delete_webhook_endpoint").count() == 1


def test_a_non_staff_owner_is_refused(django_user_model):
    user = django_user_model.objects.create_user("nobody")
    with pytest.raises(ValidationError) as excinfo:
        make_endpoint(user, "http://127.0.0.1:8443/hook")
    assert errors_of(excinfo) == {"owner": ["The owner must be an active staff user."]}
