from django.contrib import admin
from django.urls import include, path

from connections import views as connection_views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("portal.api.urls")),
    path("connect/return/<str:state>/", connection_views.oauth_return, name="oauth-return"),
]
