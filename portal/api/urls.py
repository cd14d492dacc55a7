"""/api/v1/: the routes of every app's API, plus the OpenAPI schema and its docs."""

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from connections.api import views as connection_views
from portal.api.errors import unknown_endpoint
from tenants.api import tokens

router = DefaultRouter()
router.register("tenants", connection_views.TenantViewSet, basename="tenant")
router.register("connections", connection_views.ConnectionViewSet, basename="connection")
router.register("connect", connection_views.ConnectViewSet, basename="connect")
router.register(
    "connect-requests", connection_views.ConnectRequestViewSet, basename="connect-request"
)
router.register("refresh-runs", connection_views.RefreshRunViewSet, basename="refresh-run")
router.register("audit-events", connection_views.AuditEventViewSet, basename="audit-event")
router.register("jobs", connection_views.JobViewSet, basename="job")
router.register("me/tokens", tokens.MyTokenViewSet, basename="me-token")

urlpatterns = [
    path("v1/", include(router.urls)),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    # Last: without a trailing slash, Django's APPEND_SLASH still redirects to the route.
    re_path(r"^.*/$", unknown_endpoint),
]
