"""API tokens (django-rest-knox): one way to make one, for the admin and the command alike."""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from knox.models import AuthToken

from .. import audit
from ..models import AuditAction, Via


def describe(token: AuthToken) -> str:
    """How a token is named in the trail and on pages: its first characters and its user."""
    return f"{token.token_key}… of {token.user}"


def api_token_create(owner, *, expiry: timedelta | None, user, via: Via) -> tuple[AuthToken, str]:
    """Create a token for `owner`, expiring after `expiry` (None: never); return the row and
    the token itself, which is shown once and never stored (knox keeps a hash)."""
    with transaction.atomic():
        token, plain = AuthToken.objects.create(user=owner, expiry=expiry)
        audit.record(
            AuditAction.CREATE_API_TOKEN,
            user=user,
            via=via,
            target=owner,
            parameters={
                "token": describe(token),
                "expiry_days": expiry.days if expiry is not None else 0,
            },
        )
    return token, plain


def api_token_revoke(token: AuthToken, *, user, via: Via) -> None:
    """Delete the token: the next request with it is a 401."""
    with transaction.atomic():
        audit.record(
            AuditAction.REVOKE_API_TOKEN,
            user=user,
            via=via,
            target=token.user,
            parameters={"token": describe(token)},
        )
        token.delete()
