"""Webhook endpoints in the admin: each staff user their own, the secret shown once, field
errors for what webhooks may not reach, test / rotate / replay actions, the delivery log."""

from __future__ import annotations

import re

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse
from django.utils import timezone

from alerts.models import Delivery, WebhookEndpoint
from alerts.tests.builders import make_endpoint, send_test
from tenants.models import AuditEvent, Role, TenantMembership
from tenants.tests.builders import admin_client_for, messages_of, staff_user
from tenants.tests.factories import TenantFactory

pytestmark = pytest.mark.django_db

ADD = reverse("admin:alerts_webhookendpoint_add")
LIST = reverse("admin:alerts_webhookendpoint_changelist")
DELIVERIES = reverse("admin:alerts_delivery_changelist")
SECRET = re.compile(r'value="(whsec_[A-Za-z0-9+/=]+)"')
NO_INLINE = {"deliveries-TOTAL_FORMS": "0", "deliveries-INITIAL_FORMS": "0"}


def change_url(endpoint) -> str:
    return reverse("admin:alerts_webhookendpoint_change", args=[endpoint.pk])


@pytest.fixture
def other_staff():
    return staff_user("piet", email="piet@agency.test", password="pw-piet-1234")


# Committed, as in production: the first attempt is made before the action's message.
@pytest.mark.django_db(transaction=True)
def test_adding_shows_the_secret_once_uncached_and_it_signs(staff, webhook_receiver):
    client = admin_client_for(staff)
    tenant = TenantFactory()
    TenantMembership.objects.create(user=staff, tenant=tenant, role=Role.VIEWER)

    page = client.post(
        ADD,
        {
            "url": webhook_receiver.url,
            "description": "Ops",
            "event_types": ["connection.broken", "connection.recovered"],
            "tenants": [tenant.pk],
        },
    )

    assert page.status_code == 200
    assert "no-store" in page["Cache-Control"].split(", ")
    html = page.content.decode()
    (secret,) = SECRET.findall(html)
    assert "Copy each secret now: it is not shown again" in html
    endpoint = WebhookEndpoint.objects.get()
    assert (endpoint.owner, endpoint.description, endpoint.event_types) == (
        staff,
        "Ops",
        ["connection.broken", "connection.recovered"],
    )
    assert list(endpoint.tenants.all()) == [tenant]
    assert AuditEvent.objects.filter(action="create_webhook_endpoint", user=staff).count() == 1

    change = client.get(change_url(endpoint)).content.decode()
    assert secret not in change and "whsec_" not in change
    assert "current (never shown again: rotate for a new one)" in change

    webhook_receiver.secrets = [secret]
    done = client.post(LIST, {"action": "send_test", ACTION_CHECKBOX_NAME: [endpoint.pk]})
    (delivery,) = Delivery.objects.all()
    assert messages_of(done) == [f"Ops: delivered, answered 200 (webhook-id {delivery.msg_id})."]
    assert [r.msg_id for r in webhook_receiver.received] == [delivery.msg_id]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://hooks.example.com/", "Use an https:// URL: webhooks are sent over TLS only."),
        (
            "https://10.0.0.1/hook",
            "Webhooks go to public addresses only: this host is, or resolves to, a private, "
            "loopback, link-local or reserved address.",
        ),
        (
            "https://169.254.169.254/latest/meta-data/",
            "Webhooks go to public addresses only: this host is, or resolves to, a private, "
            "loopback, link-local or reserved address.",
        ),
        (
            "https://[::1]/hook",
            "Webhooks go to public addresses only: this host is, or resolves to, a private, "
            "loopback, link-local or reserved address.",
        ),
        ("https://", "Enter a URL with a host name, such as https://hooks.example.com/portal."),
        (
            "https://me:pw@hooks.example.com/",
            "Leave the user name and password out of the URL; the receiver checks the "
            "signature (or takes a token in the path).",
        ),
    ],
)
def test_a_url_webhooks_may_not_reach_is_a_field_error_in_the_form(staff, url, message):
    page = admin_client_for(staff).post(ADD, {"url": url, "description": ""})

    assert page.status_code == 200
    assert page.context["adminform"].form.errors == {"url": [message]}
    assert not WebhookEndpoint.objects.exists()


def test_a_tenant_the_owner_cannot_see_is_not_offered_and_refused(staff):
    mine, foreign = TenantFactory(name="Salon Aurora"), TenantFactory(name="Other Agency Client")
    TenantMembership.objects.create(user=staff, tenant=mine, role=Role.OPERATOR)
    client = admin_client_for(staff)

    form = client.get(ADD).content.decode()
    assert "Salon Aurora" in form and "Other Agency Client" not in form

    page = client.post(ADD, {"url": "http://127.0.0.1:8443/", "tenants": [foreign.pk]})
    assert page.context["adminform"].form.errors == {
        "tenants": [f"Select a valid choice. {foreign.pk} is not one of the available choices."]
    }
    assert not WebhookEndpoint.objects.exists()


def test_a_staff_user_never_sees_nor_changes_another_users_endpoint(
    staff, other_staff, admin_client, django_capture_on_commit_callbacks
):
    mine, _ = make_endpoint(staff, "http://127.0.0.1:9/mine", description="Mine")
    theirs, _ = make_endpoint(other_staff, "http://127.0.0.1:9/theirs", description="Theirs")
    their_delivery = send_test(theirs, django_capture_on_commit_callbacks)
    client = admin_client_for(staff)

    listing = client.get(LIST).content.decode()
    assert "Mine" in listing and "Theirs" not in listing
    assert client.get(change_url(theirs)).status_code == 302
    client.post(change_url(theirs), {"url": "http://127.0.0.1:9/mine", "description": "x"})
    client.post(reverse("admin:alerts_webhookendpoint_delete", args=[theirs.pk]), {"post": "yes"})
    with django_capture_on_commit_callbacks(execute=True):
        client.post(LIST, {"action": "send_test", ACTION_CHECKBOX_NAME: [theirs.pk]})
        client.post(LIST, {"action": "rotate_secret", ACTION_CHECKBOX_NAME: [theirs.pk]})
    theirs.refresh_from_db()
    assert (theirs.description, theirs.secrets.count()) == ("Theirs", 1)
    assert Delivery.objects.filter(endpoint=theirs).count() == 1
    assert not AuditEvent.objects.filter(user=staff).exclude(action="create_webhook_endpoint")

    assert "Theirs" not in client.get(DELIVERIES).content.decode()
    their_page = reverse("admin:alerts_delivery_change", args=[their_delivery.pk])
    assert client.get(their_page).status_code == 302

    everything = admin_client.get(LIST).content.decode()
    assert "Mine" in everything and "Theirs" in everything
    assert admin_client.get(their_page).status_code == 200
    assert mine.owner == staff


def test_rotating_shows_the_new_secret_once_and_both_sign_meanwhile(
    staff, webhook_receiver, django_capture_on_commit_callbacks
):
    endpoint, old = make_endpoint(staff, webhook_receiver.url, description="Ops")
    client = admin_client_for(staff)

    page = client.post(LIST, {"action": "rotate_secret", ACTION_CHECKBOX_NAME: [endpoint.pk]})

    assert "no-store" in page["Cache-Control"].split(", ")
    html = page.content.decode()
    (new,) = SECRET.findall(html)
    assert new != old
    assert "The previous secret keeps signing until" in html
    webhook_receiver.secrets = [old, new]
    send_test(endpoint, django_capture_on_commit_callbacks)
    assert len(webhook_receiver.received) == 1


def test_replay_failed_since_asks_from_when_then_replays(
    staff, webhook_receiver, settings, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_RETRY_SCHEDULE_SECONDS = []
    endpoint, secret = make_endpoint(staff, webhook_receiver.url, description="Ops")
    webhook_receiver.secrets = [secret]
    webhook_receiver.answer(500)
    failed = send_test(endpoint, django_capture_on_commit_callbacks)
    client = admin_client_for(staff)

    ask = client.post(LIST, {"action": "replay_failed", ACTION_CHECKBOX_NAME: [endpoint.pk]})
    assert ask.status_code == 200
    assert "Failed since" in ask.content.decode()
    future = client.post(
        LIST,
        {
            "action": "replay_failed",
            ACTION_CHECKBOX_NAME: [endpoint.pk],
            "post": "yes",
            "since": "2999-01-01 00:00",
        },
    )
    assert future.context["form"].errors == {"since": ["Choose a time in the past."]}

    since = (timezone.now() - timezone.timedelta(hours=1)).strftime("%Y-%m-%d %H:%M")
    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(
            LIST,
            {
                "action": "replay_failed",
                ACTION_CHECKBOX_NAME: [endpoint.pk],
                "post": "yes",
                "since": since,
            },
            follow=True,
        )

    assert messages_of(done) == ["Ops: 1 delivery replayed."]
    assert [r.msg_id for r in webhook_receiver.received] == [failed.msg_id] * 2
    assert Delivery.objects.get(replay_of=failed).state == "succeeded"


def test_the_endpoint_page_lists_the_newest_50_deliveries_and_each_its_attempts(
    staff, settings, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_RETRY_SCHEDULE_SECONDS = []
    endpoint, _ = make_endpoint(staff, "http://127.0.0.1:9/hook", description="Ops")
    first = send_test(endpoint, django_capture_on_commit_callbacks)
    Delivery.objects.bulk_create(
        Delivery(endpoint=endpoint, msg_id=f"msg_{n}", event_type="webhook.test", body="{}")
        for n in range(55)
    )
    client = admin_client_for(staff)

    html = client.get(change_url(endpoint)).content.decode()

    assert html.count('href="/admin/alerts/delivery/') == 50
    assert f'href="/admin/alerts/delivery/{first.pk}/change/"' not in html
    attempt_page = client.get(reverse("admin:alerts_delivery_change", args=[first.pk]))
    text = attempt_page.content.decode()
    assert "Connection refused" in text
    assert first.msg_id in text


@pytest.mark.django_db(transaction=True)
def test_replaying_one_delivery_from_the_log(staff, webhook_receiver):
    endpoint, secret = make_endpoint(staff, webhook_receiver.url, description="Ops")
    webhook_receiver.secrets = [secret]
    client = admin_client_for(staff)
    messages_of(client.post(LIST, {"action": "send_test", ACTION_CHECKBOX_NAME: [endpoint.pk]}))
    original = Delivery.objects.get()
    assert original.state == "succeeded"

    done = client.post(DELIVERIES, {"action": "replay", ACTION_CHECKBOX_NAME: [original.pk]})

    replay = Delivery.objects.get(replay_of=original)
    assert messages_of(done) == [
        f"Replay of {original.msg_id}: delivered, answered 200 (webhook-id {original.msg_id})."
    ]
    assert replay.state == "succeeded"
    assert [r.body for r in webhook_receiver.received] == [original.body] * 2


def test_the_owner_changes_and_turns_off_an_endpoint_through_the_service(
    staff, django_capture_on_commit_callbacks
):
    endpoint, _ = make_endpoint(staff, "http://127.0.0.1:9/hook", description="Ops")
    pending = send_test(endpoint, django_capture_on_commit_callbacks)
    client = admin_client_for(staff)

    done = client.post(
        change_url(endpoint),
        {
            "url": "http://127.0.0.1:9/other",
            "description": "Ops (paused)",
            "event_types": ["issue.muted"],
            **NO_INLINE,
        },
    )

    assert done.status_code == 302
    endpoint.refresh_from_db()
    assert (endpoint.url, endpoint.description, endpoint.event_types, endpoint.is_enabled) == (
        "http://127.0.0.1:9/other",
        "Ops (paused)",
        ["issue.muted"],
        False,
    )
    assert endpoint.disabled_reason == "manual"
    pending.refresh_from_db()
    assert pending.state == "cancelled"
    event = AuditEvent.objects.get(action="update_webhook_endpoint")
    assert (event.user, event.via) == (staff, "admin")
    assert event.changes["description"] == ["Ops", "Ops (paused)"]
    assert event.changes["is_enabled"] == [True, False]
    # Both URLs have a path: the trail keeps neither (it may hold the receiver's token).
    assert "url" not in event.changes
