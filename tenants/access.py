"""Who may see and act on which tenant: the rule every admin page and API endpoint uses.

Superusers see and act on every tenant. Other users see the tenants they are members of;
operators may act on them, viewers only look. Inactive users see nothing.
"""

from __future__ import annotations

from django.db.models import QuerySet

from .models import Role, Tenant, TenantMembership


def visible_tenants(user) -> QuerySet[Tenant]:
    """Return the tenants `user` may see."""
    if not (user and user.is_active):
        return Tenant.objects.none()
    if user.is_superuser:
        return Tenant.objects.all()
    return Tenant.objects.filter(memberships__user=user)


def operable_tenants(user) -> QuerySet[Tenant]:
    """Return the tenants `user` may act on (change, refresh, connect, disconnect)."""
    if not (user and user.is_active):
        return Tenant.objects.none()
    if user.is_superuser:
        return Tenant.objects.all()
    return Tenant.objects.filter(memberships__user=user, memberships__role=Role.OPERATOR)


def can_see(user, tenant: Tenant | int) -> bool:
    tenant_id = getattr(tenant, "pk", tenant)
    return visible_tenants(user).filter(pk=tenant_id).exists()


def can_act(user, tenant: Tenant | int) -> bool:
    tenant_id = getattr(tenant, "pk", tenant)
    return operable_tenants(user).filter(pk=tenant_id).exists()


def has_any_tenant(user) -> bool:
    """True when the user has something to look at (or is a superuser)."""
    if not (user and user.is_active):
        return False
    return user.is_superuser or TenantMembership.objects.filter(user=user).exists()


def is_operator_anywhere(user) -> bool:
    if not (user and user.is_active):
        return False
    return (
        user.is_superuser or TenantMembership.objects.filter(user=user, role=Role.OPERATOR).exists()
    )
