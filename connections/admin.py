"""Admin for the mirror: connections across tenants, their history, providers, schedules."""

from . import admin_tenants  # noqa: F401  (re-registers Tenant with the control-room admin)
