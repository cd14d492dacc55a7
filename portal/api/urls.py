"""/api/v1/: the routes of every app's API, composed here, plus the OpenAPI schema and docs.

As cookiecutter-django's `config/api_router.py`: each app's viewsets are registered side by
side; the tenant routes join the tenants' viewset and the mirror's actions on it.
"""

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from alerts.api import views as alert_views
from connections.api import views as connection_views
from portal.api.errors import unknown_endpoint
from tenants.api import tokens
from tenants.api import views as tenant_views


class TenantViewSet(connection_views.TenantMirrorActions, tenant_views.TenantViewSet):
    """Tenants, with their mirror: refresh, providers, schedules, events."""


router = DefaultRouter()
router.register("tenants", TenantViewSet, basename="tenant")
router.register("connections", connection_views.ConnectionViewSet, basename="connection")
router.register("connect", connection_views.ConnectViewSet, basename="connect")
router.register(
    "connect-requests", connection_views.ConnectRequestViewSet, basename="connect-request"
)
router.register("refresh-runs", connection_views.RefreshRunViewSet, basename="refresh-run")
router.register("audit-events", tenant_views.AuditEventViewSet, basename="audit-event")
router.register("jobs", connection_views.JobViewSet, basename="job")
router.register("me/tokens", tokens.MyTokenViewSet, basename="me-token")
router.register(
    "webhook-endpoints", alert_views.WebhookEndpointViewSet, basename="webhook-endpoint"
)

urlpatterns = [
    path("v1/", include(router.urls)),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    # Last: without a trailing slash, Django's APPEND_SLASH still redirects to the route.
    re_path(r"^.*/$", unknown_endpoint),
]
