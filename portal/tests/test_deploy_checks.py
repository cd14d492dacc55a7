"""`check --deploy` is clean with production settings, and says what a production setup lacks."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from portal.checks import check_celery_broker, check_email, check_shared_cache

MANAGE = Path(__file__).resolve().parents[2] / "manage.py"
PRODUCTION = {
    "DEBUG": "false",
    "ALLOWED_HOSTS": "portal.example.com",
    "SECURE_SSL_REDIRECT": "true",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
    "SECURE_HSTS_PRELOAD": "true",
    "SESSION_COOKIE_SECURE": "true",
    "CSRF_COOKIE_SECURE": "true",
    "SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO,https",
    "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
    "CACHE_URL": "rediscache://127.0.0.1:6379/1",
    "EMAIL_URL": "smtp+tls://mailer:password@smtp.example.com:587",
}


TLS = [name for name in PRODUCTION if name.startswith(("SECURE_", "SESSION_", "CSRF_"))]


def check_deploy(environment: dict[str, str], *, unset=()) -> subprocess.CompletedProcess:
    """Run `manage.py check --deploy` in a fresh process with this environment."""
    # The browser tests' conftest allows async-unsafe ORM calls; production never does.
    unset = {"DJANGO_ALLOW_ASYNC_UNSAFE", *unset}
    env = {
        **{k: v for k, v in os.environ.items() if k not in unset},
        "SECRET_KEY": secrets.token_urlsafe(50),
        "PORTAL_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        **environment,
    }
    return subprocess.run(  # noqa: S603 (this interpreter and manage.py, fixed arguments)
        [sys.executable, str(MANAGE), "check", "--deploy"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_production_settings_pass_check_deploy():
    result = check_deploy(PRODUCTION)

    assert result.returncode == 0, result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout, result.stderr


def test_without_the_tls_settings_django_warns():
    plain = {k: v for k, v in PRODUCTION.items() if k not in TLS}

    result = check_deploy(plain, unset=TLS)

    for check_id in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert check_id in result.stderr


def test_no_broker_and_a_local_cache_are_reported():
    result = check_deploy({**PRODUCTION, "CELERY_BROKER_URL": "", "CACHE_URL": "locmemcache://"})

    assert "portal.W001" in result.stderr
    assert "portal.W002" in result.stderr


def test_broker_check_fires_without_a_broker(settings):
    settings.CELERY_BROKER_URL = ""

    [warning] = check_celery_broker()

    assert warning.id == "portal.W001"
    assert "inside web requests" in warning.msg
    assert "CELERY_BROKER_URL" in warning.hint


def test_broker_check_passes_with_a_broker(settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:6379/0"

    assert check_celery_broker() == []


@pytest.mark.parametrize(
    "backend",
    [
        "django.core.cache.backends.locmem.LocMemCache",
        "django.core.cache.backends.dummy.DummyCache",
        "django.core.cache.backends.filebased.FileBasedCache",
    ],
)
def test_cache_check_fires_for_a_process_local_cache(settings, backend, tmp_path):
    settings.CACHES = {"default": {"BACKEND": backend, "LOCATION": str(tmp_path)}}

    [warning] = check_shared_cache()

    assert warning.id == "portal.W002"
    assert "not shared between workers" in warning.msg
    assert "CACHE_URL" in warning.hint


def test_cache_check_passes_for_redis(settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:6379/1",
        }
    }

    assert check_shared_cache() == []


def test_email_check_fires_while_mail_goes_to_the_outbox(settings):
    settings.EMAIL_BACKEND = settings.OUTBOX_EMAIL_BACKEND

    [warning] = check_email()

    assert warning.id == "portal.W003"
    assert "none is sent" in warning.msg
    assert "EMAIL_URL" in warning.hint


def test_email_check_passes_with_an_smtp_server(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"

    assert check_email() == []


def test_check_deploy_reports_the_outbox_without_email_url():
    without_email = {k: v for k, v in PRODUCTION.items() if k != "EMAIL_URL"}

    result = check_deploy(without_email, unset=("EMAIL_URL",))

    assert "portal.W003" in result.stderr
    assert "EMAIL_URL is unset" in result.stderr
