"""The tenants app's admin: each module registers its own models (tokens replaces knox's).

`TenantAdmin` is defined here but registered by the portal, above both apps, with the mirror.
"""

from . import access, audit, tenants, tokens  # noqa: F401  (they register their admins)
from .access import TenantMembershipInline
from .tenants import TenantAdmin

__all__ = ["TenantAdmin", "TenantMembershipInline"]
