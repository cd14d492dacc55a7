from django.contrib import admin
from django.urls import include, path

from connections import views as connection_views

from . import health, metrics

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("portal.api.urls")),
    path("connect/return/<str:state>/", connection_views.oauth_return, name="oauth-return"),
    # What an uptime monitor polls: no login, no session, 503 when refreshes stopped.
    path("healthz", health.healthz, name="healthz"),
    # Prometheus' scrape: off unless METRICS_TOKEN is set, then a bearer token.
    path("metrics", metrics.metrics, name="metrics"),
]

# Under /api/ an error outside a view (a bad Host, an exception in middleware) still answers
# in the API's JSON error shape; elsewhere Django's own pages.
handler400 = "portal.api.errors.bad_request"
handler500 = "portal.api.errors.server_error"
