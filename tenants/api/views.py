"""Tenants over the API (list, retrieve, create, update, deactivate, verify credentials), and
the audit trail."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from tenants.models import AuditEvent, Tenant, Via
from tenants.services.tenants import tenant_save, tenant_set_active, tenant_verify_credentials

from .filters import AuditEventFilter, TenantFilter
from .serializers import AuditEventSerializer, TenantSerializer


class TenantViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """The tenants of the token's user. Creating one is for superusers."""

    serializer_class = TenantSerializer
    # is_active is a boolean that refuses what it cannot read.
    filterset_class = TenantFilter

    def get_queryset(self):
        return Tenant.objects.visible_to(self.request.user).select_related("wix_app")

    def create(self, request, *args, **kwargs):
        # Refused before the input is read: a non-superuser learns nothing from validation.
        if not request.user.is_superuser:
            raise PermissionDenied("Only superusers add tenants.")
        return super().create(request, *args, **kwargs)

    def perform_create(self, serializer):
        # The serializer built and validated the tenant; saving it is the service's.
        tenant = serializer.validated_tenant
        serializer.instance = tenant_save(tenant, user=self.request.user, via=Via.API)

    def perform_update(self, serializer):
        tenant = serializer.validated_tenant
        serializer.instance = tenant_save(tenant, user=self.request.user, via=Via.API)

    def _set_active(self, request, *, active: bool) -> Response:
        tenant = tenant_set_active(self.get_object(), active=active, user=request.user, via=Via.API)
        return Response(self.get_serializer(tenant).data)

    @extend_schema(request=None, responses=TenantSerializer)
    @action(detail=True, methods=["post"])
    def deactivate(self, request, pk=None):
        """Stop refreshing this tenant; its mirror and history are kept."""
        return self._set_active(request, active=False)

    @extend_schema(request=None, responses=TenantSerializer)
    @action(detail=True, methods=["post"])
    def activate(self, request, pk=None):
        """Refresh this tenant again."""
        return self._set_active(request, active=True)

    @extend_schema(request=None, responses=TenantSerializer)
    @action(detail=True, methods=["post"])
    def verify(self, request, pk=None):
        """Check the credentials against Wix now; the outcome is in `credentials_status`."""
        tenant = self.get_object()
        tenant_verify_credentials(tenant, user=request.user, via=Via.API)
        return Response(self.get_serializer(tenant).data)


class AuditEventViewSet(viewsets.ReadOnlyModelViewSet):
    """What people and API clients did on the user's tenants, newest first."""

    serializer_class = AuditEventSerializer
    filterset_class = AuditEventFilter

    def get_queryset(self):
        # Events without a tenant are for superusers' eyes only: for them, no filter at all,
        # so a page walks the id index instead of sorting every row.
        return AuditEvent.objects.visible_to(self.request.user)
