"""API access: the same rule as the admin (tenants.access), applied per request and object."""

from __future__ import annotations

from rest_framework.permissions import SAFE_METHODS, BasePermission

from tenants import access


class HasTenantAccess(BasePermission):
    """Authenticated users with a tenant may read; acting needs operator rights on the object's
    tenant. Objects outside the user's tenants never get here: querysets are scoped, so
    they are 404s, not 403s."""

    message = "You may only view this tenant's data; acting on it needs the operator role."

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        if not access.has_any_tenant(user):
            self.message = "Your user has no tenants."
            return False
        return True

    def has_object_permission(self, request, view, obj) -> bool:
        if request.method in SAFE_METHODS:
            return True
        tenant = obj if obj.__class__.__name__ == "Tenant" else getattr(obj, "tenant", None)
        if tenant is not None and access.can_act(request.user, tenant):
            return True
        access.deny(
            request.user,
            action=f"{getattr(view, 'basename', '') or type(view).__name__}.{view.action}",
            tenant=tenant,
            target=obj,
            message=self.message,
            via="api",
        )
        return False
