"""Mail leaves through Django's SMTP backend, configured by EMAIL_URL; unset, it is kept in the
outbox, which superusers read in the admin."""

from __future__ import annotations

import os
import smtplib
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.mail import EmailMultiAlternatives, send_mail
from django.urls import reverse

from alerts.models import OutboxMessage
from tenants.tests.builders import staff_user

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def test_mail_reaches_a_real_smtp_server_with_both_parts(smtp_server):
    message = EmailMultiAlternatives(
        "3 calendars broke on Salon Aurora",
        "Anna Lee's Google calendar: token revoked.",
        "portal@agency.test",
        ["olga@agency.test"],
    )
    message.attach_alternative("<p>Anna Lee's <b>Google</b> calendar</p>", "text/html")
    message.send()

    (received,) = smtp_server.wait_for(1)
    assert received["Subject"] == "3 calendars broke on Salon Aurora"
    assert smtp_server.envelopes == [("portal@agency.test", ["olga@agency.test"])]
    assert received.get_body(("plain",)).get_content().strip() == (
        "Anna Lee's Google calendar: token revoked."
    )
    assert "<b>Google</b>" in received.get_body(("html",)).get_content()


def test_mail_without_a_server_fails_loudly():
    with pytest.raises(ConnectionRefusedError):
        send_mail("s", "b", "portal@agency.test", ["olga@agency.test"])


def test_the_outbox_keeps_what_would_have_been_sent(settings, admin_client):
    settings.EMAIL_BACKEND = "alerts.mail.OutboxBackend"
    message = EmailMultiAlternatives(
        "Salon <Aurora>", "text part", "portal@agency.test", ["olga@agency.test"]
    )
    message.attach_alternative("<script>alert(1)</script><p>html part</p>", "text/html")
    assert message.send() == 1

    kept = OutboxMessage.objects.get()
    assert (kept.to, kept.subject, kept.text) == (
        ["olga@agency.test"],
        "Salon <Aurora>",
        "text part",
    )
    page = admin_client.get(reverse("admin:alerts_outboxmessage_change", args=[kept.pk]))
    html = page.content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert(1)" not in html
    listing = admin_client.get(reverse("admin:alerts_outboxmessage_changelist"))
    assert "Salon &lt;Aurora&gt;" in listing.content.decode()

    staff = staff_user("olga")
    admin_client.force_login(staff)
    refused = admin_client.get(reverse("admin:alerts_outboxmessage_changelist"))
    assert refused.status_code == 403


@pytest.mark.parametrize("url", ["bogus://mail.example", "smtp://mail.example:notaport", "smtp://"])
def test_a_bad_email_url_is_refused_in_one_line_without_quoting_it(url):
    secret_url = url.replace("://", "://user:s3cret-pw@") if "@" not in url else url
    env = {**os.environ, "EMAIL_URL": secret_url, "DJANGO_SETTINGS_MODULE": "portal.settings"}
    done = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True
    )

    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        "ImproperlyConfigured: EMAIL_URL must be smtp://user:password@host:port "
        "(or smtp+tls://, smtp+ssl://)."
    )
    assert "s3cret-pw" not in done.stderr + done.stdout


def test_email_url_sets_the_smtp_settings():
    env = {
        **os.environ,
        "EMAIL_URL": "smtp+tls://mailer:pw@smtp.example:587",
        "DJANGO_SETTINGS_MODULE": "portal.settings",
    }
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.EMAIL_BACKEND, s.EMAIL_HOST, s.EMAIL_PORT, s.EMAIL_USE_TLS, s.EMAIL_TIMEOUT)"
    )
    done = subprocess.run(  # noqa: S603 (our own interpreter, fixed code)
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )

    assert done.stdout.split() == [
        "django.core.mail.backends.smtp.EmailBackend",
        "smtp.example",
        "587",
        "True",
        "10",
    ], done.stderr


def test_smtp_refusal_is_an_error_not_silence(smtp_server, settings):
    settings.EMAIL_PORT = 9
    with pytest.raises((ConnectionRefusedError, smtplib.SMTPException)):
        send_mail("s", "b", "portal@agency.test", ["olga@agency.test"])
    assert smtp_server.messages == []
