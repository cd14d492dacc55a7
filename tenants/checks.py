"""System checks for encryption at rest."""

from django.conf import settings
from django.core.checks import Error, Warning

from tenants import crypto

KEY_HINT = (
    "Generate one with: python -c "
    "'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
)


def check_encryption_keys(app_configs=None, **kwargs):
    """Warn when PORTAL_ENCRYPTION_KEYS is unset; error on each key that is not a Fernet key."""
    keys = list(getattr(settings, "PORTAL_ENCRYPTION_KEYS", []) or [])
    if not keys:
        return [
            Warning(
                "PORTAL_ENCRYPTION_KEYS is unset: secrets are encrypted with a key derived "
                "from SECRET_KEY, so changing SECRET_KEY makes them unreadable.",
                hint=(
                    KEY_HINT + ", set PORTAL_ENCRYPTION_KEYS to it, then run "
                    "manage.py rotate_encryption_keys to re-encrypt existing secrets."
                ),
                id="tenants.W001",
            )
        ]
    # Only positions are reported: a key must never be printed.
    return [
        Error(
            f"PORTAL_ENCRYPTION_KEYS[{position}] is not a valid Fernet key "
            "(32 url-safe base64-encoded bytes).",
            hint=KEY_HINT + ".",
            id="tenants.E001",
        )
        for position, key in enumerate(keys)
        if not crypto.is_valid_key(key)
    ]
