"""The agency's Wix apps (OAuth app id and secret), for superusers."""

from __future__ import annotations

from django.db import transaction

from .. import audit
from ..crypto import DecryptionError
from ..fields import reveal
from ..models import AuditAction, Via, WixApp


def wix_app_save(wix_app: WixApp, *, user, via: Via) -> WixApp:
    """Save a new or changed Wix app, already validated, and audit it; the secret is
    recorded only as set or replaced."""
    stored = WixApp.objects.filter(pk=wix_app.pk).first() if wix_app.pk is not None else None
    before = {"name": stored.name, "app_id": stored.app_id} if stored else {}
    old_secret = _secret(stored) if stored else ""
    with transaction.atomic():
        wix_app.save()
        changes = audit.changes_between(before, {"name": wix_app.name, "app_id": wix_app.app_id})
        new_secret = _secret(wix_app)
        secret = audit.secret_change(
            bool(old_secret), bool(new_secret), given=old_secret != new_secret
        )
        if secret:
            changes["app_secret"] = [None, secret]
        audit.record(
            AuditAction.UPDATE_WIX_APP if stored else AuditAction.CREATE_WIX_APP,
            user=user,
            via=via,
            target=wix_app,
            changes=changes,
        )
    return wix_app


def _secret(wix_app: WixApp) -> str:
    try:
        return reveal(wix_app.app_secret) or ""
    except DecryptionError:
        return "(unreadable)"
