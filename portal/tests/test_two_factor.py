"""Staff add an authenticator app in the admin; the login then asks for its code."""

from __future__ import annotations

import logging
import re
import time
from base64 import b32encode

import pytest
from django.test import Client
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal.tests.builders import PASSWORD
from tenants.tests.builders import admin_client_for

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/"
ENROL = "/admin/two-factor/"
CODE_NEEDED = "Enter the code from your authenticator app, or a recovery code."
CODE_WRONG = "That code is wrong or expired."


@pytest.fixture(autouse=True)
def _fast_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def code_for(device: TOTPDevice, *, steps_ahead: int = 0) -> str:
    """What the user's app shows now (or `steps_ahead` 30-second steps later)."""
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time() + steps_ahead * device.step
    return f"{totp.token():0{device.digits}d}"


def another_code(code: str) -> str:
    return f"{(int(code) + 500_000) % 1_000_000:06d}"


def log_in(client: Client, username: str = "olga", password: str = PASSWORD, code: str = ""):
    return client.post(
        LOGIN, {"username": username, "password": password, "otp_token": code, "next": "/admin/"}
    )


def enrol(client: Client, user) -> list[str]:
    """Turn on two-factor through the page; return the recovery codes it shows."""
    assert client.get(ENROL).status_code == 200
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    page = client.post(ENROL, {"code": code_for(device)})
    assert page.status_code == 200
    codes = re.findall(r"<li><code>([a-z2-7]{8})</code></li>", page.content.decode())
    assert len(codes) == 10
    return codes


def test_enrolment_shows_the_key_once_and_confirms_with_a_code(client, olga):
    assert log_in(client).status_code == 302

    page = client.get(ENROL)

    assert page.status_code == 200
    html = page.content.decode()
    device = TOTPDevice.objects.get(user=olga, confirmed=False)
    secret = b32encode(device.bin_key).decode().rstrip("=")
    shown = re.search(r'id="two-factor-secret">([A-Z2-7 ]+)</code>', html).group(1)
    assert shown.replace(" ", "") == secret
    assert "<svg" in html  # the QR code, inline
    assert client.get(ENROL).content.decode().count(shown) == 1  # the same key on reload

    wrong = client.post(ENROL, {"code": another_code(code_for(device))})
    assert CODE_WRONG in wrong.content.decode()
    device.refresh_from_db()
    assert not device.confirmed
    time.sleep(1.1)  # a wrong code makes the device wait a second before the next

    done = client.post(ENROL, {"code": code_for(device)})

    html = done.content.decode()
    assert "Two-factor authentication is on for your account." in html
    codes = re.findall(r"<li><code>([a-z2-7]{8})</code></li>", html)
    assert len(codes) == 10
    assert set(codes) == set(
        StaticToken.objects.filter(device__user=olga).values_list("token", flat=True)
    )
    assert shown not in html
    device.refresh_from_db()
    assert device.confirmed

    later = client.get(ENROL).content.decode()
    assert "Two-factor authentication is on for your account" in later
    assert shown not in later and secret not in later
    assert not any(code in later for code in codes)
    assert "You have 10 unused recovery codes." in later


def test_login_then_requires_the_code(client, olga):
    log_in(client)
    enrol(client, olga)
    device = TOTPDevice.objects.get(user=olga)
    browser = Client()

    no_code = log_in(browser)
    assert no_code.status_code == 200
    assert CODE_NEEDED in no_code.content.decode()
    wrong = log_in(browser, code=another_code(code_for(device, steps_ahead=1)))
    assert wrong.status_code == 200
    assert CODE_WRONG in wrong.content.decode()
    assert browser.get("/admin/").status_code == 302
    wrong_password = log_in(browser, password="nope", code=code_for(device, steps_ahead=1))
    assert "Please enter the correct username and password" in wrong_password.content.decode()

    time.sleep(1.1)  # a wrong code makes the device wait a second before the next
    # The code after the one enrolment used: each code works once.
    admitted = log_in(browser, code=code_for(device, steps_ahead=1))

    assert admitted.status_code == 302
    assert admitted["Location"] == "/admin/"
    assert browser.get("/admin/").status_code == 200


def test_a_recovery_code_works_once(client, olga):
    log_in(client)
    first, second, *_ = enrol(client, olga)

    assert log_in(Client(), code=first).status_code == 302
    again = log_in(Client(), code=first)
    assert again.status_code == 200
    assert CODE_WRONG in again.content.decode()
    time.sleep(1.1)  # recovery codes, too, wait a second after a wrong one
    assert log_in(Client(), code=second.upper()).status_code == 302
    assert StaticToken.objects.filter(device__user=olga).count() == 8


def test_new_recovery_codes_need_a_code_from_the_app(client, olga):
    log_in(client)
    old = enrol(client, olga)
    device = TOTPDevice.objects.get(user=olga)

    refused = client.post(ENROL, {"code": old[0]})
    assert CODE_WRONG in refused.content.decode()
    page = client.post(ENROL, {"code": code_for(device, steps_ahead=1)})

    new = re.findall(r"<li><code>([a-z2-7]{8})</code></li>", page.content.decode())
    assert len(new) == 10
    assert not set(new) & set(old)
    assert log_in(Client(), code=old[1]).status_code == 200
    time.sleep(1.1)
    assert log_in(Client(), code=new[0]).status_code == 302


def test_a_session_that_skipped_the_code_is_logged_out(client, olga):
    """A session from before the app was added (here: force_login) must log in again."""
    log_in(client)
    enrol(client, olga)
    stale = admin_client_for(olga)

    response = stale.get("/admin/connections/connection/")

    assert response.status_code == 302
    assert response["Location"] == f"{LOGIN}?next=/admin/connections/connection/"
    assert stale.get("/admin/").status_code == 302
    assert client.get("/admin/").status_code == 200  # the session that enrolled is verified


def test_without_2fa_staff_log_in_with_a_password_and_see_the_link(client, olga):
    assert log_in(client).status_code == 302

    index = client.get("/admin/").content.decode()

    assert f'href="{ENROL}" id="two-factor-link">Two-factor authentication</a>' in index


def test_the_enrolment_page_needs_a_login():
    response = Client().get(ENROL)

    assert response.status_code == 302
    assert response["Location"].startswith(LOGIN)


@pytest.mark.parametrize(
    "path",
    ["/admin/", "/admin/tenants/tenant/", "/admin/connections/connection/", "/api/v1/tenants/"],
)
def test_required_2fa_sends_staff_without_a_device_to_enrolment(settings, client, olga, path):
    settings.PORTAL_REQUIRE_2FA = True
    client.force_login(olga)

    response = client.get(path)

    assert response.status_code == 302
    assert response["Location"] == ENROL


def test_required_2fa_login_leads_to_enrolment_and_then_everywhere(settings, client, olga):
    settings.PORTAL_REQUIRE_2FA = True

    response = log_in(client)
    assert response.status_code == 302
    assert client.get(response["Location"])["Location"] == ENROL
    page = client.get(ENROL)
    assert "Staff accounts need two-factor authentication." in page.content.decode()
    enrol(client, olga)

    assert client.get("/admin/").status_code == 200


def test_keys_and_codes_never_reach_the_logs(client, olga, caplog):
    caplog.set_level(logging.DEBUG)
    log_in(client)
    client.get(ENROL)
    device = TOTPDevice.objects.get(user=olga, confirmed=False)
    codes = enrol(client, olga)
    log_in(Client(), code="999999")
    log_in(Client(), code=codes[0])

    logged = caplog.text.lower()
    assert b32encode(device.bin_key).decode().rstrip("=").lower() not in logged
    assert device.key.lower() not in logged
    assert not any(code in logged for code in codes)
