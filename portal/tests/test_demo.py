"""`manage.py demo` seeds tenants that really reach the sandbox, and prints a login."""

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from alerts.models import Delivery, DeliveryAttempt, WebhookEndpoint
from connections.models import Connection
from tenants.models import CredentialsStatus, Tenant

pytestmark = pytest.mark.django_db


def run_demo(settings) -> str:
    settings.DEBUG = True
    # The demo allows webhooks to 127.0.0.1; set through the fixture, it is undone after.
    settings.WEBHOOK_ALLOW_HOSTS = []
    out = io.StringIO()
    call_command("demo", "--no-serve", "--sandbox-port", "0", "--receiver-port", "0", stdout=out)
    return out.getvalue()


def test_demo_creates_verified_tenants_and_a_login(settings):
    output = run_demo(settings)

    tenants = list(Tenant.objects.all())
    assert len(tenants) == 3
    assert {t.auth_method for t in tenants} == {"oauth_app", "api_key"}
    assert all(t.credentials_status == CredentialsStatus.OK for t in tenants)
    password = output.split("Login:")[1].split()[2]
    assert get_user_model().objects.get(username="admin").check_password(password)
    assert "http://127.0.0.1:8000/admin/" in output
    # The admin opens on the sandbox's connections, in every status.
    statuses = set(Connection.objects.values_list("status", flat=True))
    assert statuses == {"CONNECTED", "SYNC_IN_PROGRESS", "SYNCED", "DISCONNECTED", "ERROR"}


# Committed for real: the delivery's first attempt is made once its row is committed, while
# the demo's receiver still listens, as in the demo itself.
@pytest.mark.django_db(transaction=True)
def test_demo_sends_a_signed_test_event_its_local_receiver_verifies(settings):
    output = run_demo(settings)

    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.owner.username == "admin"
    assert f"  Webhooks:     {endpoint.url}  (a local receiver" in output
    (delivery,) = Delivery.objects.filter(endpoint=endpoint)
    (attempt,) = DeliveryAttempt.objects.filter(delivery=delivery)
    assert (delivery.state, delivery.event_type, attempt.status_code) == (
        "succeeded",
        "webhook.test",
        200,
    )
    assert attempt.response_excerpt == f"Verified webhook.test {delivery.msg_id}"
    assert "  Emails:       kept in Alerts > Outbox, none sent" in output


def test_demo_twice_updates_the_same_tenants(settings):
    run_demo(settings)
    run_demo(settings)

    assert WebhookEndpoint.objects.count() == 1
    assert Tenant.objects.count() == 3
    assert all(t.credentials_status == CredentialsStatus.OK for t in Tenant.objects.all())


def test_demo_refuses_to_run_without_debug(settings):
    settings.DEBUG = False

    with pytest.raises(CommandError, match="only with DEBUG=true"):
        call_command("demo", "--no-serve")
