"""Encryption at rest for stored secrets (Fernet, with key rotation through MultiFernet).

`settings.PORTAL_ENCRYPTION_KEYS` lists Fernet keys: the first encrypts, every one decrypts.
When the list is empty, a single key derived from `SECRET_KEY` is used (and `tenants.W001`
says so). Keys are read at call time, so overriding the setting takes effect at once.
"""

import base64
import functools

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

DERIVATION_LABEL = b"portal-encryption"


class DecryptionError(Exception):
    """A stored value could not be decrypted with any configured key.

    The message names what failed (model and field, when known), never the stored value.
    """


def is_valid_key(key: str | bytes) -> bool:
    """Return whether `key` is a usable Fernet key (32 url-safe base64-encoded bytes)."""
    try:
        Fernet(_as_bytes(key))
    except (ValueError, TypeError):
        return False
    return True


def derive_key(secret_key: str) -> bytes:
    """Return the Fernet key derived from `secret_key` (HKDF-SHA256, fixed salt and info)."""
    return _derive_key(secret_key)


def get_fernet(*, with_derived_fallback: bool = False) -> MultiFernet:
    """Return the MultiFernet for the current settings; raise ImproperlyConfigured on a bad key.

    `with_derived_fallback` also accepts the SECRET_KEY-derived key for decryption, so that
    rotation can move values written before PORTAL_ENCRYPTION_KEYS was set.
    """
    keys = tuple(_as_bytes(key) for key in settings.PORTAL_ENCRYPTION_KEYS)
    derived = derive_key(settings.SECRET_KEY)
    if not keys:
        keys = (derived,)
    elif with_derived_fallback and derived not in keys:
        keys = (*keys, derived)
    return _multi_fernet(keys)


def encrypt(plaintext: str) -> str:
    """Return the Fernet token (text) for `plaintext`, encrypted with the first key."""
    return get_fernet().encrypt(plaintext.encode()).decode("ascii")


def decrypt(token: str, *, label: str = "a stored secret") -> str:
    """Return the plaintext of `token`; raise DecryptionError (naming `label`) if no key fits."""
    try:
        return get_fernet().decrypt(_as_bytes(token)).decode()
    except (InvalidToken, UnicodeDecodeError):
        raise DecryptionError(_failure_message(label)) from None


def rotate(token: str, *, label: str = "a stored secret") -> str:
    """Return `token` re-encrypted with the first key; raise DecryptionError if no key fits.

    Besides PORTAL_ENCRYPTION_KEYS, the SECRET_KEY-derived key decrypts here too.
    """
    try:
        return get_fernet(with_derived_fallback=True).rotate(_as_bytes(token)).decode("ascii")
    except InvalidToken:
        raise DecryptionError(_failure_message(label)) from None


def _failure_message(label: str) -> str:
    return (
        f"Cannot decrypt {label}: no key in PORTAL_ENCRYPTION_KEYS fits "
        "(the key that encrypted it may be missing from PORTAL_ENCRYPTION_KEYS)."
    )


def _as_bytes(value: str | bytes) -> bytes:
    if isinstance(value, bytes):
        return value.strip()
    return str(value).strip().encode()


@functools.lru_cache(maxsize=8)
def _derive_key(secret_key: str) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=DERIVATION_LABEL, info=DERIVATION_LABEL)
    return base64.urlsafe_b64encode(hkdf.derive(secret_key.encode()))


@functools.lru_cache(maxsize=8)
def _multi_fernet(keys: tuple[bytes, ...]) -> MultiFernet:
    fernets = []
    for position, key in enumerate(keys):
        try:
            fernets.append(Fernet(key))
        except (ValueError, TypeError):
            # The message gives the position only: the key itself must never reach a log.
            raise ImproperlyConfigured(
                f"PORTAL_ENCRYPTION_KEYS[{position}] is not a valid Fernet key "
                "(32 url-safe base64-encoded bytes)."
            ) from None
    return MultiFernet(fernets)
