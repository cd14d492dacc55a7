"""Standard Webhooks signatures, made by the `standardwebhooks` package (no signing code here).

https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32


def generate_secret() -> str:
    """Return a new endpoint secret: `whsec_` and 32 random bytes in base64, as the spec has."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def headers(msg_id: str, body: str, keys: Sequence[str], *, at: int) -> dict[str, str]:
    """Return the headers of one attempt: `webhook-id`, `webhook-timestamp` (`at`, Unix
    seconds) and `webhook-signature`, one `v1,` signature per secret, space-separated.

    During a rotation every secret still valid signs, so a receiver holding either verifies.
    """
    # sign() relabels a datetime's zone as UTC: it must be a UTC one.
    timestamp = datetime.fromtimestamp(at, tz=UTC)
    signatures = " ".join(Webhook(key).sign(msg_id, timestamp, body) for key in keys)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(at),
        "webhook-signature": signatures,
        "content-type": "application/json",
    }
