"""Who may see and act on which tenant: the rule every admin page and API endpoint uses.

Superusers see and act on every tenant. Other users see the tenants they are members of;
operators may act on them, viewers only look. Inactive users see nothing.

A user's memberships are read once per user object and kept on it: `request.user` is loaded
anew for every request, so a page that asks many times (every model admin in the sidebar,
every permission check) pays one query. A membership saved or deleted in this process drops
every such cache; one changed elsewhere shows from the next request on. Changes that send no
signal (`bulk_create`, `update`) need `forget` on a user object kept across them.
"""

from __future__ import annotations

import itertools
from typing import TypeVar

from django.db.models import Model, QuerySet
from django.db.models.signals import post_delete, post_save

from . import audit
from .models import Role, Tenant, TenantMembership, TenantOwned

Owned = TypeVar("Owned", bound=TenantOwned)

_CACHE_ATTRIBUTE = "_portal_tenant_roles"
_generations = itertools.count(1)
_generation = 0


def _membership_changed(**kwargs) -> None:
    global _generation
    _generation = next(_generations)


post_save.connect(_membership_changed, sender=TenantMembership, dispatch_uid="access-roles")
post_delete.connect(_membership_changed, sender=TenantMembership, dispatch_uid="access-roles")


def roles(user) -> dict[int, str]:
    """Return {tenant id: role} of the user's memberships (one query per user object)."""
    if not (user and user.is_active and user.pk is not None):
        return {}
    generation, cached = getattr(user, _CACHE_ATTRIBUTE, (None, None))
    if cached is None or generation != _generation:
        generation = _generation
        cached = dict(
            TenantMembership.objects.filter(user=user).order_by().values_list("tenant_id", "role")
        )
        setattr(user, _CACHE_ATTRIBUTE, (generation, cached))
    return cached


def forget(user) -> None:
    """Drop the memberships cached on `user`, so the next check reads them again."""
    if user is not None and hasattr(user, _CACHE_ATTRIBUTE):
        delattr(user, _CACHE_ATTRIBUTE)


def visible_tenant_ids(user) -> list[int] | None:
    """Return the ids of the tenants `user` may see, or None for every tenant (superusers)."""
    if user and user.is_active and user.is_superuser:
        return None
    return sorted(roles(user))


def operable_tenant_ids(user) -> list[int] | None:
    """Return the ids of the tenants `user` may act on, or None for every tenant."""
    if user and user.is_active and user.is_superuser:
        return None
    return sorted(pk for pk, role in roles(user).items() if role == Role.OPERATOR)


# --- Reaching one object: Zulip's access_stream_by_id, for tenants ------------------------


class NotVisible(Exception):
    """The user may not see it, or it does not exist: interfaces answer 404 for both, so a
    stranger cannot tell another tenant's ids from unused ones."""


class ViewOnly(Exception):
    """The user sees it but may not act on it (a viewer): interfaces answer 403."""


def access_tenant(user, tenant_id: int | str | Tenant | None, *, act: bool = False) -> Tenant:
    """The tenant `tenant_id`, if `user` may see it (and, with `act`, act on it).

    Raises NotVisible or ViewOnly.
    """
    pk = _tenant_id(tenant_id)
    tenant = Tenant.objects.visible_to(user).filter(pk=pk).first() if pk is not None else None
    if tenant is None:
        raise NotVisible("No such tenant.")
    if act and not can_act(user, tenant):
        raise ViewOnly(f"You may look at {tenant}, not act on it: ask for the operator role.")
    return tenant


def access_tenant_object(user, queryset: QuerySet[Owned], pk, *, act: bool = False) -> Owned:
    """The row `pk` of `queryset` (a tenant-owned model's), if `user` may see its tenant (and,
    with `act`, act on it). Raises NotVisible or ViewOnly.

    The row's tenant is selected along, so a caller reaching it costs no query.
    """
    try:
        row = queryset.visible_to(user).select_related("tenant").filter(pk=pk).first()
    except (TypeError, ValueError):  # a pk the field cannot take: nothing has it
        row = None
    if row is None:
        raise NotVisible(f"No such {queryset.model._meta.verbose_name}.")
    if act and not can_act(user, row.tenant_id):
        raise ViewOnly(
            f"You may look at {row.tenant}'s {queryset.model._meta.verbose_name_plural}, "
            "not act on them: ask for the operator role."
        )
    return row


def deny(
    user,
    *,
    action: str,
    via: str,
    tenant: Tenant | None = None,
    target: Model | None = None,
    message: str = "",
) -> ViewOnly:
    """Record that `user` was refused `action` (DENIED, rate-limited) and return the ViewOnly
    for the caller to raise: a refusal is audited here, by the rule that made it."""
    audit.record_denied(
        user=user, action=action, tenant=tenant, target=target, message=message, via=via
    )
    return ViewOnly(message or f"You may not {action}.")


def can_see(user, tenant: Tenant | int) -> bool:
    tenant_id = _tenant_id(tenant)
    if user and user.is_active and user.is_superuser:
        return tenant_id is not None and Tenant.objects.filter(pk=tenant_id).exists()
    return tenant_id in roles(user)


def can_act(user, tenant: Tenant | int) -> bool:
    tenant_id = _tenant_id(tenant)
    if user and user.is_active and user.is_superuser:
        return tenant_id is not None and Tenant.objects.filter(pk=tenant_id).exists()
    return roles(user).get(tenant_id) == Role.OPERATOR


WAY_IN_PERMISSION = "tenants.change_way_in"
# The fields that say how a tenant reaches Wix. Changing one points the tenant at a site,
# so it is an agency admin's power, never an operator's: an operator who could set another
# client's instance or site would mirror that client's calendars into her own tenant.
WAY_IN_FIELDS = ("site_id", "wix_app", "instance_id", "api_key")


def can_change_way_in(user, tenant: Tenant | int | None = None) -> bool:
    """Whether `user` may set how a tenant reaches Wix (its site, Wix app, instance, API key).

    Superusers may; so may staff given the `tenants.change_way_in` permission (an agency
    admin's group), on the tenants they may act on. `tenant` None asks about new tenants.
    """
    if not (user and user.is_active):
        return False
    if user.is_superuser:
        return True
    if not user.has_perm(WAY_IN_PERMISSION):
        return False
    return tenant is None or can_act(user, tenant)


def has_any_tenant(user) -> bool:
    """True when the user has something to look at (or is a superuser)."""
    if not (user and user.is_active):
        return False
    return user.is_superuser or bool(roles(user))


def is_operator_anywhere(user) -> bool:
    if not (user and user.is_active):
        return False
    return user.is_superuser or Role.OPERATOR in roles(user).values()


def _tenant_id(tenant: Tenant | int | str | None) -> int | None:
    try:
        return int(getattr(tenant, "pk", tenant))
    except (TypeError, ValueError):
        return None
