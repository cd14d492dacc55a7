"""Admin for the mirror: connections across tenants, their history, providers, schedules,
refresh runs and connect requests; one module per page, registered on import."""

from . import (  # noqa: F401  (each registers its model's admin)
    changes,
    connect_requests,
    connections,
    providers,
    refresh_runs,
    schedules,
)
