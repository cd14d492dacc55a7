import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from tenants import crypto


def test_round_trip_with_configured_key(encryption_key):
    token = crypto.encrypt("hunter2-but-longer")

    assert token != "hunter2-but-longer"
    assert "hunter2" not in token
    assert Fernet(encryption_key).decrypt(token.encode()) == b"hunter2-but-longer"
    assert crypto.decrypt(token) == "hunter2-but-longer"


def test_unset_keys_use_a_key_derived_from_secret_key(settings):
    settings.PORTAL_ENCRYPTION_KEYS = []
    settings.SECRET_KEY = "a-secret-key-for-this-test-only"

    token = crypto.encrypt("value")

    derived = Fernet(crypto.derive_key("a-secret-key-for-this-test-only"))
    assert derived.decrypt(token.encode()) == b"value"


def test_derived_key_depends_on_secret_key():
    assert crypto.derive_key("one") != crypto.derive_key("two")
    assert crypto.derive_key("one") == crypto.derive_key("one")
    assert crypto.is_valid_key(crypto.derive_key("one"))


def test_fernet_is_cached_per_key_list_and_follows_settings(settings, fernet_key):
    settings.PORTAL_ENCRYPTION_KEYS = [fernet_key]
    first = crypto.get_fernet()
    assert crypto.get_fernet() is first

    settings.PORTAL_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    assert crypto.get_fernet() is not first


def test_keys_are_read_at_call_time(settings, fernet_key):
    settings.PORTAL_ENCRYPTION_KEYS = [fernet_key]
    token = crypto.encrypt("value")

    settings.PORTAL_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]

    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(token)


def test_first_key_encrypts_and_every_key_decrypts(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.PORTAL_ENCRYPTION_KEYS = [old]
    old_token = crypto.encrypt("value")

    settings.PORTAL_ENCRYPTION_KEYS = [new, old]

    assert crypto.decrypt(old_token) == "value"
    assert Fernet(new).decrypt(crypto.encrypt("value").encode()) == b"value"


def test_wrong_key_raises_decryption_error_without_the_value(settings, fernet_key):
    settings.PORTAL_ENCRYPTION_KEYS = [fernet_key]
    token = crypto.encrypt("the-plaintext")
    settings.PORTAL_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]

    with pytest.raises(crypto.DecryptionError) as excinfo:
        crypto.decrypt(token, label="tenants.Tenant.api_key")

    message = str(excinfo.value)
    assert message == (
        "Cannot decrypt tenants.Tenant.api_key: no key in PORTAL_ENCRYPTION_KEYS fits "
        "(the key that encrypted it may be missing from PORTAL_ENCRYPTION_KEYS)."
    )
    assert token not in message
    assert "the-plaintext" not in message
    assert excinfo.value.__cause__ is None
    assert excinfo.value.__suppress_context__


def test_garbage_token_raises_decryption_error(encryption_key):
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt("not-a-token")


def test_invalid_configured_key_raises_without_echoing_it(settings, fernet_key):
    settings.PORTAL_ENCRYPTION_KEYS = [fernet_key, "too-short-to-be-a-key"]

    with pytest.raises(ImproperlyConfigured) as excinfo:
        crypto.encrypt("value")

    assert str(excinfo.value) == (
        "PORTAL_ENCRYPTION_KEYS[1] is not a valid Fernet key (32 url-safe base64-encoded bytes)."
    )


def test_rotate_falls_back_to_the_derived_key(settings, fernet_key):
    settings.PORTAL_ENCRYPTION_KEYS = []
    derived_token = crypto.encrypt("value")
    settings.PORTAL_ENCRYPTION_KEYS = [fernet_key]

    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(derived_token)
    rotated = crypto.rotate(derived_token)

    assert Fernet(fernet_key).decrypt(rotated.encode()) == b"value"


@pytest.mark.parametrize(
    ("key", "valid"),
    [
        (Fernet.generate_key().decode(), True),
        (Fernet.generate_key(), True),
        ("", False),
        ("not a key", False),
        ("A" * 43 + "=", True),
        ("A" * 44, False),
        (None, False),
    ],
    ids=["text", "bytes", "empty", "words", "32-bytes", "33-bytes", "none"],
)
def test_is_valid_key(key, valid):
    assert crypto.is_valid_key(key) is valid
