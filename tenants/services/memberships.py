"""Memberships: who may see a tenant (viewers) and act on it (operators)."""

from __future__ import annotations

from django.db import transaction

from .. import audit
from ..models import AuditAction, TenantMembership, Via


def membership_save(membership: TenantMembership, *, user, via: Via) -> TenantMembership:
    """Grant a new membership or save a changed role, and audit it (GRANT or CHANGE_ACCESS)."""
    granted = membership.pk is None
    stored = TenantMembership.objects.filter(pk=membership.pk).values_list("role", flat=True)
    before = None if granted else stored.first()
    with transaction.atomic():
        membership.save()
        audit.record(
            AuditAction.GRANT_ACCESS if granted else AuditAction.CHANGE_ACCESS,
            user=user,
            via=via,
            tenant=membership.tenant,
            target=membership,
            parameters=_who(membership),
            changes=audit.changes_between({"role": before}, {"role": membership.role}),
        )
    return membership


def membership_revoke(membership: TenantMembership, *, user, via: Via) -> None:
    """Delete the membership and audit it (REVOKE_ACCESS): the user no longer sees the tenant."""
    with transaction.atomic():
        audit.record(
            AuditAction.REVOKE_ACCESS,
            user=user,
            via=via,
            tenant=membership.tenant,
            target=membership,
            parameters=_who(membership),
            changes={"role": [membership.role, None]},
        )
        membership.delete()


def _who(membership: TenantMembership) -> dict[str, str]:
    return {"user": membership.user.get_username(), "role": membership.role}
