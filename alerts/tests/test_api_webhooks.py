"""/api/v1/webhook-endpoints/ against a real receiver: the secret shown once (create, rotate),
signed test events, deliveries with their attempts, replays, field errors (the SSRF guard, a
foreign tenant answered as a missing one), and another user's endpoint a 404 everywhere."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from alerts.models import Delivery, WebhookEndpoint, WebhookSecret
from alerts.tests.builders import make_endpoint
from tenants.models import AuditEvent
from tenants.tests.builders import api_client_for, staff_user
from tenants.tests.factories import TenantFactory

pytestmark = pytest.mark.django_db

BASE = "/api/v1/webhook-endpoints/"
NOT_PUBLIC = (
    "Webhooks go to public addresses only: this host is, or resolves to, a private, "
    "loopback, link-local or reserved address."
)


@pytest.fixture
def tenant():
    return TenantFactory(name="Salon Aurora")


@pytest.fixture
def olga(tenant):
    return staff_user("olga", operator_of=(tenant,), email="olga@agency.test")


@pytest.fixture
def client(olga):
    return api_client_for(olga)


def fields_of(response) -> dict:
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid"
    return error["fields"]


def test_create_shows_the_secret_once_and_a_signed_test_event_arrives(
    client, olga, tenant, webhook_receiver, django_capture_on_commit_callbacks
):
    created = client.post(
        BASE,
        {"url": webhook_receiver.url, "description": "Ops", "tenants": [tenant.pk]},
        format="json",
    )

    assert created.status_code == 201, created.content
    assert created["Cache-Control"] == "no-store"
    body = created.json()
    secret = body["secret"]
    assert secret.startswith("whsec_")
    assert body["owner"] == "olga"
    assert (body["tenants"], body["event_types"], body["is_enabled"]) == ([tenant.pk], [], True)
    endpoint = WebhookEndpoint.objects.get(pk=body["id"])
    assert endpoint.owner == olga
    assert AuditEvent.objects.get(action="create_webhook_endpoint").via == "api"

    webhook_receiver.secrets = [secret]  # the receiver verifies with it, or fails the test
    with django_capture_on_commit_callbacks(execute=True):
        sent = client.post(f"{BASE}{endpoint.pk}/test/")

    assert sent.status_code == 202, sent.content
    (received,) = webhook_receiver.received
    assert received.msg_id == sent.json()["webhook_id"]
    assert received.payload["type"] == "webhook.test"
    assert Delivery.objects.get(pk=sent.json()["delivery_id"]).state == "succeeded"


def test_the_secret_is_never_listed_retrieved_or_logged(
    client, olga, webhook_receiver, django_capture_on_commit_callbacks, caplog
):
    caplog.set_level(logging.DEBUG)
    created = client.post(BASE, {"url": webhook_receiver.url}, format="json").json()
    rotated = client.post(f"{BASE}{created['id']}/rotate-secret/").json()
    webhook_receiver.secrets = [rotated["secret"]]
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(f"{BASE}{created['id']}/test/").status_code == 202

    answers = [
        client.get(BASE),
        client.get(f"{BASE}{created['id']}/"),
        client.get(f"{BASE}{created['id']}/deliveries/"),
        client.patch(f"{BASE}{created['id']}/", {"description": "x"}, format="json"),
    ]

    secrets = [created["secret"], rotated["secret"]]
    for answer in answers:
        assert answer.status_code == 200, answer.content
        assert "Cache-Control" not in answer or "no-store" not in answer["Cache-Control"]
        assert not [s for s in secrets if s in answer.content.decode()]
        assert "secret" not in answer.content.decode()
    assert not [s for s in secrets if s in caplog.text]
    assert not [s for s in secrets if s.removeprefix("whsec_") in caplog.text]


def test_rotate_secret_shows_the_new_one_once_and_both_sign_for_a_day(
    client, olga, webhook_receiver, django_capture_on_commit_callbacks
):
    endpoint, old = make_endpoint(olga, webhook_receiver.url)

    rotated = client.post(f"{BASE}{endpoint.pk}/rotate-secret/")

    assert rotated.status_code == 201, rotated.content
    assert rotated["Cache-Control"] == "no-store"
    new = rotated.json()["secret"]
    assert new.startswith("whsec_") and new != old
    assert set(rotated.json()) == {"secret", "previous_valid_until"}
    previous = WebhookSecret.objects.get(endpoint=endpoint, expires_at__isnull=False)
    assert previous.expires_at - timezone.now() > timedelta(hours=23)
    # Both sign: a receiver holding either verifies the test event.
    webhook_receiver.secrets = [old, new]
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(f"{BASE}{endpoint.pk}/test/").status_code == 202
    assert len(webhook_receiver.received) == 1


def test_deliveries_are_paged_newest_first_with_their_attempts(
    client, olga, webhook_receiver, settings, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_RETRY_SCHEDULE_SECONDS = []
    endpoint, secret = make_endpoint(olga, webhook_receiver.url)
    webhook_receiver.secrets = [secret]
    webhook_receiver.answer(500)
    for _ in range(3):
        with django_capture_on_commit_callbacks(execute=True):
            assert client.post(f"{BASE}{endpoint.pk}/test/").status_code == 202

    first = client.get(f"{BASE}{endpoint.pk}/deliveries/?page_size=2")

    assert first.status_code == 200, first.content
    page = first.json()
    ids = list(
        Delivery.objects.filter(endpoint=endpoint).order_by("-id").values_list("pk", flat=True)
    )
    assert [d["id"] for d in page["results"]] == ids[:2]
    rest = client.get(page["next"]).json()["results"]
    assert [d["id"] for d in rest] == ids[2:]
    oldest = rest[0]
    assert (oldest["state"], oldest["last_status"], oldest["event_type"]) == (
        "failed",
        500,
        "webhook.test",
    )
    (attempt,) = oldest["attempt_log"]
    assert (attempt["number"], attempt["status_code"]) == (1, 500)
    assert attempt["started_at"] and attempt["duration_ms"] >= 0
    assert page["results"][0]["attempt_log"][0]["status_code"] == 200
    assert "body" not in oldest and "response_excerpt" not in attempt


def test_replay_one_delivery_or_every_failed_one_since(
    client, olga, webhook_receiver, settings, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_RETRY_SCHEDULE_SECONDS = []
    endpoint, secret = make_endpoint(olga, webhook_receiver.url)
    webhook_receiver.secrets = [secret]
    webhook_receiver.answer(500, times=2)
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            client.post(f"{BASE}{endpoint.pk}/test/")
    failed = list(Delivery.objects.filter(endpoint=endpoint).order_by("id"))
    assert [d.state for d in failed] == ["failed", "failed"]

    with django_capture_on_commit_callbacks(execute=True):
        one = client.post(
            f"{BASE}{endpoint.pk}/replay/", {"delivery_id": failed[0].pk}, format="json"
        )

    assert (one.status_code, one.json()) == (202, {"queued": 1})
    assert webhook_receiver.received[-1].msg_id == failed[0].msg_id

    since = (timezone.now() - timedelta(hours=1)).isoformat()
    with django_capture_on_commit_callbacks(execute=True):
        rest = client.post(f"{BASE}{endpoint.pk}/replay/", {"failed_since": since}, format="json")

    assert (rest.status_code, rest.json()) == (202, {"queued": 1})
    assert webhook_receiver.received[-1].msg_id == failed[1].msg_id
    assert Delivery.objects.filter(endpoint=endpoint, state="succeeded").count() == 2


def test_replay_needs_one_of_its_fields_and_a_delivery_of_this_endpoint(client, olga):
    endpoint, _ = make_endpoint(olga, "http://127.0.0.1:9/hook")
    other, _ = make_endpoint(olga, "http://127.0.0.1:9/other")
    pending = Delivery.objects.create(endpoint=other, msg_id="msg_x", event_type="webhook.test")
    url = f"{BASE}{endpoint.pk}/replay/"

    assert "non_field_errors" in fields_of(client.post(url, {}, format="json"))
    assert fields_of(client.post(url, {"delivery_id": pending.pk}, format="json")) == {
        "delivery_id": ["No such delivery of this endpoint."]
    }
    future = (timezone.now() + timedelta(days=1)).isoformat()
    assert fields_of(client.post(url, {"failed_since": future}, format="json")) == {
        "failed_since": ["Choose a time in the past."]
    }


def test_refused_verbs_are_409(client, olga):
    endpoint, _ = make_endpoint(olga, "http://127.0.0.1:9/hook")
    pending = Delivery.objects.create(endpoint=endpoint, msg_id="msg_p", event_type="webhook.test")

    still = client.post(f"{BASE}{endpoint.pk}/replay/", {"delivery_id": pending.pk}, format="json")
    assert still.status_code == 409, still.content
    assert still.json()["error"]["code"] == "conflict"

    off = client.patch(f"{BASE}{endpoint.pk}/", {"is_enabled": False}, format="json")
    assert (off.status_code, off.json()["is_enabled"]) == (200, False)
    for answer in (
        client.post(f"{BASE}{endpoint.pk}/test/"),
        client.post(f"{BASE}{endpoint.pk}/replay/", {"failed_since": "2026-01-01T00:00:00Z"}),
    ):
        assert answer.status_code == 409, answer.content
        assert "turned off" in answer.json()["error"]["message"]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "http://hooks.example.com/portal",
            "Use an https:// URL: webhooks are sent over TLS only.",
        ),
        ("https://10.0.0.1/hook", NOT_PUBLIC),
        ("https://169.254.169.254/latest/meta-data/", NOT_PUBLIC),
    ],
)
def test_a_url_webhooks_may_not_reach_is_a_400_field_error(client, settings, url, message):
    settings.WEBHOOK_ALLOW_HOSTS = []

    assert fields_of(client.post(BASE, {"url": url}, format="json")) == {"url": [message]}
    assert not WebhookEndpoint.objects.exists()


def test_a_foreign_tenant_is_answered_as_a_missing_one(client, olga, tenant):
    foreign = TenantFactory(name="Someone else's")
    missing = foreign.pk + 1000

    answers = [
        fields_of(
            client.post(BASE, {"url": "http://127.0.0.1:9/h", "tenants": [pk]}, format="json")
        )
        for pk in (foreign.pk, missing)
    ]

    assert answers == [
        {"tenants": [f"No such tenant: {foreign.pk}."]},
        {"tenants": [f"No such tenant: {missing}."]},
    ]
    assert "Someone else" not in str(answers)
    endpoint, _ = make_endpoint(olga, "http://127.0.0.1:9/hook", tenant_ids=[tenant.pk])
    changed = client.patch(f"{BASE}{endpoint.pk}/", {"tenants": [foreign.pk]}, format="json")
    assert fields_of(changed) == {"tenants": [f"No such tenant: {foreign.pk}."]}
    assert list(endpoint.tenants.all()) == [tenant]


def test_update_and_delete_go_through_the_service(client, olga, tenant):
    endpoint, _ = make_endpoint(olga, "http://127.0.0.1:9/hook")

    put = client.put(
        f"{BASE}{endpoint.pk}/",
        {
            "url": "http://127.0.0.1:9/new",
            "event_types": ["connection.broken"],
            "tenants": [tenant.pk],
        },
        format="json",
    )
    assert put.status_code == 200, put.content
    assert (put.json()["url"], put.json()["event_types"], put.json()["tenants"]) == (
        "http://127.0.0.1:9/new",
        ["connection.broken"],
        [tenant.pk],
    )
    unknown = client.patch(f"{BASE}{endpoint.pk}/", {"event_types": ["nope"]}, format="json")
    assert list(fields_of(unknown)) == ["event_types"]
    assert AuditEvent.objects.filter(action="update_webhook_endpoint", via="api").count() == 1

    assert client.delete(f"{BASE}{endpoint.pk}/").status_code == 204
    assert not WebhookEndpoint.objects.exists()
    assert AuditEvent.objects.get(action="delete_webhook_endpoint").via == "api"


def test_another_users_endpoint_is_404_on_every_route(client, olga, tenant):
    """A staff user of the same tenant: still not olga's to see or touch."""
    peter = staff_user("peter", operator_of=(tenant,))
    theirs, _ = make_endpoint(peter, "http://127.0.0.1:9/hook")
    mine, _ = make_endpoint(olga, "http://127.0.0.1:9/mine")
    url = f"{BASE}{theirs.pk}/"
    calls = [
        client.get(url),
        client.put(url, {"url": "http://127.0.0.1:9/x"}, format="json"),
        client.patch(url, {"description": "x"}, format="json"),
        client.post(f"{url}rotate-secret/"),
        client.post(f"{url}test/"),
        client.get(f"{url}deliveries/"),
        client.post(f"{url}replay/", {"failed_since": "2026-01-01T00:00:00Z"}, format="json"),
        client.delete(url),
    ]

    for answer in calls:
        assert answer.status_code == 404, answer.content
        assert answer.json()["error"]["code"] == "not_found"
    assert [e["id"] for e in client.get(BASE).json()["results"]] == [mine.pk]
    assert WebhookEndpoint.objects.get(pk=theirs.pk).description == ""
    assert WebhookSecret.objects.filter(endpoint=theirs).count() == 1
    assert not Delivery.objects.exists()
    # A superuser manages every endpoint.
    root = api_client_for(staff_user("root", is_superuser=True))
    assert {e["id"] for e in root.get(BASE).json()["results"]} == {theirs.pk, mine.pk}


def test_a_request_without_a_token_is_401():
    assert APIClient().get(BASE).status_code == 401


@pytest.mark.parametrize("pk", ["99999999999999999999", "abc"])
def test_an_id_no_row_can_have_is_404(client, pk):
    answer = client.get(f"{BASE}{pk}/")

    assert answer.status_code == 404, answer.content
    assert answer.json()["error"]["code"] == "not_found"


def test_tenant_ids_beyond_64_bits_are_a_field_error(client):
    body = {"url": "http://127.0.0.1:9/h", "tenants": [2**64]}
    fields = fields_of(client.post(BASE, body, format="json"))

    assert list(fields) == ["tenants"]
