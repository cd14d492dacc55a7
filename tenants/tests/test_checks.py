import pytest
from cryptography.fernet import Fernet
from django.core.checks import Error, Tags, Warning, run_checks

from tenants.checks import KEY_HINT, check_encryption_keys

W001 = Warning(
    "PORTAL_ENCRYPTION_KEYS is unset: secrets are encrypted with a key derived "
    "from SECRET_KEY, so changing SECRET_KEY makes them unreadable.",
    hint=(
        KEY_HINT + ", set PORTAL_ENCRYPTION_KEYS to it, then run "
        "manage.py rotate_encryption_keys to re-encrypt existing secrets."
    ),
    id="tenants.W001",
)


def test_unset_keys_warn(settings):
    settings.PORTAL_ENCRYPTION_KEYS = []

    assert check_encryption_keys() == [W001]


def test_valid_keys_pass(settings):
    settings.PORTAL_ENCRYPTION_KEYS = [Fernet.generate_key().decode() for _ in range(2)]

    assert check_encryption_keys() == []


def test_each_invalid_key_is_an_error_that_does_not_echo_it(settings):
    bad = "definitely-not-a-fernet-key"
    settings.PORTAL_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), bad]

    errors = check_encryption_keys()

    assert errors == [
        Error(
            "PORTAL_ENCRYPTION_KEYS[1] is not a valid Fernet key "
            "(32 url-safe base64-encoded bytes).",
            hint=KEY_HINT + ".",
            id="tenants.E001",
        )
    ]
    assert bad not in errors[0].msg
    assert bad not in errors[0].hint


@pytest.mark.parametrize(
    ("keys", "ids"),
    [([], ["tenants.W001"]), (["bad"], ["tenants.E001"]), ([Fernet.generate_key().decode()], [])],
    ids=["unset", "invalid", "valid"],
)
def test_check_is_registered(settings, keys, ids):
    settings.PORTAL_ENCRYPTION_KEYS = keys

    messages = run_checks(tags=[Tags.security])

    assert [m.id for m in messages if m.id.startswith("tenants.")] == ids
