"""Repeated failed admin logins lock the username out from that address (django-axes)."""

from __future__ import annotations

import re

import pytest
from axes.models import AccessAttempt
from django.test import Client
from django.urls import reverse

from portal.tests.builders import PASSWORD
from tenants.tests.builders import admin_client_for, api_token, staff_user, superuser

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/"
WRONG_PASSWORD = "Please enter the correct username and password for a staff account."
LOCKED = (
    "Too many failed logins for this account from your address. Try again in an hour, "
    "or ask an administrator to unlock it."
)


@pytest.fixture(autouse=True)
def _lockout_settings(settings):
    settings.AXES_FAILURE_LIMIT = 5
    # Dozens of logins: a deliberately slow hasher would take most of a minute.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def browser(address: str = "127.0.0.1") -> Client:
    """A client that, like a browser, must send the login form's CSRF token back."""
    return Client(enforce_csrf_checks=True, REMOTE_ADDR=address)


def log_in(client: Client, username: str, password: str, **fields):
    """GET the login page, then POST its form as a browser does."""
    page = client.get(f"{LOGIN}?next=/admin/")
    assert page.status_code == 200
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode())
    data = {
        "csrfmiddlewaretoken": token.group(1),
        "username": username,
        "password": password,
        "next": "/admin/",
        **fields,
    }
    return client.post(LOGIN, data)


def is_logged_in(client: Client) -> bool:
    return client.get("/admin/").status_code == 200


def lock_out(client: Client, username: str = "olga"):
    for _ in range(4):
        response = log_in(client, username, "wrong")
        assert response.status_code == 200
        assert WRONG_PASSWORD in response.content.decode()
    return log_in(client, username, "wrong")


def test_fifth_failure_locks_out_and_the_right_password_is_refused(olga):
    client = browser()

    fifth = lock_out(client)

    assert fifth.status_code == 429
    assert LOCKED in fifth.content.decode()
    locked = log_in(client, "olga", PASSWORD)
    assert locked.status_code == 429
    assert LOCKED in locked.content.decode()
    assert not is_logged_in(client)


def test_lockout_is_per_username_and_address(olga):
    staff_user("victor", password=PASSWORD)
    assert lock_out(browser("127.0.0.1")).status_code == 429

    elsewhere = browser("10.0.0.2")
    assert log_in(elsewhere, "olga", PASSWORD).status_code == 302
    assert is_logged_in(elsewhere)
    colleague = browser("127.0.0.1")
    assert log_in(colleague, "victor", PASSWORD).status_code == 302


def test_a_superuser_unlocks_the_account_by_deleting_its_access_attempt(olga):
    client = browser()
    assert lock_out(client).status_code == 429
    attempt = AccessAttempt.objects.get(username="olga")
    root = admin_client_for(superuser())

    listing = root.get(reverse("admin:axes_accessattempt_changelist"))
    assert listing.status_code == 200
    assert "olga" in listing.content.decode()
    deleted = root.post(
        reverse("admin:axes_accessattempt_delete", args=[attempt.pk]), {"post": "yes"}
    )

    assert deleted.status_code == 302
    assert not AccessAttempt.objects.filter(username="olga").exists()
    assert log_in(client, "olga", PASSWORD).status_code == 302
    assert is_logged_in(client)


def test_access_attempts_are_for_superusers_only(olga):
    from django.contrib.auth.models import Permission

    olga.user_permissions.set(Permission.objects.filter(content_type__app_label="axes"))
    lock_out(browser("10.0.0.9"), "victor")
    client = admin_client_for(olga)

    assert client.get(reverse("admin:axes_accessattempt_changelist")).status_code == 403
    attempt = AccessAttempt.objects.get(username="victor")
    delete = reverse("admin:axes_accessattempt_delete", args=[attempt.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert AccessAttempt.objects.filter(username="victor").exists()
    assert "axes" not in client.get("/admin/").content.decode().lower()


def test_a_successful_login_forgets_earlier_failures(olga):
    client = browser()
    for _ in range(4):
        log_in(client, "olga", "wrong")

    assert log_in(client, "olga", PASSWORD).status_code == 302

    assert not AccessAttempt.objects.filter(username="olga").exists()


def test_failed_attempts_do_not_store_the_password_or_code(olga):
    log_in(browser(), "olga", "a-guessed-password", otp_token="123456")

    attempt = AccessAttempt.objects.get(username="olga")
    assert attempt.failures_since_start == 1
    assert "a-guessed-password" not in attempt.post_data
    assert "123456" not in attempt.post_data


def test_test_client_login_still_works(client, olga):
    assert client.login(username="olga", password=PASSWORD)
    assert is_logged_in(client)


def test_api_tokens_work_while_the_admin_login_is_locked():
    root = superuser(password=PASSWORD)
    assert lock_out(browser(), "root").status_code == 429
    token = api_token(root)

    response = Client().get("/api/v1/tenants/", HTTP_AUTHORIZATION=f"Token {token}")

    assert response.status_code == 200
