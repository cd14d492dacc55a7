"""A webhook secret is shown once and used to sign; it is in no row, task argument, log,
payload or page afterwards, and encrypted at rest (re-encrypted by rotate_encryption_keys)."""

from __future__ import annotations

import io
import logging

import pytest
from cryptography.fernet import Fernet
from django.apps import apps
from django.core.management import call_command
from django.db import connection
from django.urls import reverse
from django_celery_results.models import TaskResult

from alerts.models import Delivery, WebhookSecret
from alerts.services import endpoints
from alerts.tests.builders import make_endpoint, send_test
from tenants.fields import reveal
from tenants.models import Via
from tenants.tests.builders import admin_client_for

pytestmark = pytest.mark.django_db


def raw_secret_column(pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM alerts_webhooksecret WHERE id = %s", [pk])
        return cursor.fetchone()[0]


def test_no_secret_in_rows_task_arguments_logs_payloads_or_pages(
    staff, webhook_receiver, smtp_server, caplog, django_capture_on_commit_callbacks
):
    caplog.set_level(logging.DEBUG)
    endpoint, first = make_endpoint(staff, webhook_receiver.url, description="Ops")
    second = endpoints.endpoint_rotate_secret(endpoint, user=staff, via=Via.ADMIN)
    webhook_receiver.secrets = [first, second]
    webhook_receiver.answer(500).answer(410)
    delivery = send_test(endpoint, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        endpoints.endpoint_send_test(endpoint, user=staff, via=Via.ADMIN)
    smtp_server.wait_for(1)  # the 410 turned it off and its owner was told
    client = admin_client_for(staff)
    pages = [
        client.get(reverse("admin:alerts_webhookendpoint_change", args=[endpoint.pk])),
        client.get(reverse("admin:alerts_delivery_change", args=[delivery.pk])),
        client.get(reverse("admin:alerts_delivery_changelist")),
        client.get(reverse("admin:alerts_webhookendpoint_changelist")),
    ]

    assert TaskResult.objects.filter(task_name="alerts.tasks.deliver").count() == 2
    for secret in (first, second):
        key = secret.removeprefix("whsec_")
        for model in apps.get_models():
            assert key not in repr(list(model.objects.values())), model
        assert key not in caplog.text
        for page in pages:
            assert page.status_code == 200
            assert key not in page.content.decode()
        for received in webhook_receiver.received:
            assert key not in received.body
        assert key not in smtp_server.messages[0].as_string()
    assert Delivery.objects.count() == 2
    for stored in WebhookSecret.objects.all():
        assert raw_secret_column(stored.pk) not in (first, second)
        assert reveal(stored.secret) in (first, second)


def test_webhook_secrets_are_re_encrypted_with_the_first_key(staff, settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.PORTAL_ENCRYPTION_KEYS = [old]
    endpoint, secret = make_endpoint(staff, "http://127.0.0.1:9/hook")
    settings.PORTAL_ENCRYPTION_KEYS = [new, old]
    out = io.StringIO()

    call_command("rotate_encryption_keys", stdout=out)

    assert "alerts.WebhookSecret: 1 value(s) re-encrypted" in out.getvalue()
    stored = WebhookSecret.objects.get(endpoint=endpoint)
    assert Fernet(new).decrypt(raw_secret_column(stored.pk).encode()).decode() == secret
