"""The mirror and the actions on it over the API; every queryset starts from the user's tenants."""

from __future__ import annotations

from functools import partial

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from common.api_errors import Conflict, Unavailable, error_responses
from connections import selectors, tasks
from connections.models import (
    Connection,
    ConnectionChange,
    ConnectRequest,
    Job,
    Provider,
    RefreshRun,
    Schedule,
)
from connections.services.actions import (
    connection_disconnect,
    connection_refresh,
    connection_set_sync_config,
)
from connections.services.connect import credentials_connect, oauth_connect_start
from connections.services.errors import RefreshInProgress, TenantInactive
from connections.services.queue import tenant_refresh_queue
from connections.views import oauth_return_url
from tenants import access
from tenants.models import Tenant, Via

from . import filters
from .serializers import (
    ConnectionChangeSerializer,
    ConnectionSerializer,
    ConnectRequestSerializer,
    CredentialsConnectSerializer,
    EventSerializer,
    EventsQuerySerializer,
    JobSerializer,
    NoInputSerializer,
    OAuthConnectSerializer,
    ProviderSerializer,
    RefreshRunSerializer,
    ScheduleSerializer,
    SyncConfigSerializer,
)

JobAccepted = inline_serializer("JobAccepted", {"job": JobSerializer()})
# What an action that calls Wix may answer besides its success.
WIX_ERRORS = error_responses(502, 503)
# Connecting names its tenant in the body: another tenant's is 404, as in a path.
CONNECT_ERRORS = error_responses(404, 502, 503)


class TenantMirrorActions:
    """A tenant's mirror over the API: refresh, providers, schedules, events.

    Mixed into the tenants' viewset where the API is composed (portal/api/urls.py), so the
    routes stay /api/v1/tenants/{id}/refresh/ and so on, while neither app subclasses the
    other's views.
    """

    @extend_schema(request=None, responses={202: JobAccepted, **error_responses(409, 503)})
    @action(detail=True, methods=["post"], serializer_class=NoInputSerializer)
    def refresh(self, request, pk=None):
        """Queue a refresh; 202 with the job to poll at /api/v1/jobs/{id}/, 409 if one runs
        or the tenant is inactive."""
        tenant = self.get_object()
        try:
            job = tenant_refresh_queue(tenant, user=request.user, via=Via.API)
        except (RefreshInProgress, TenantInactive) as exc:
            raise Conflict(str(exc)) from None
        except tasks.LockUnavailable as exc:
            # Its text names the cache's error; the answer says what the client can do.
            raise Unavailable(exc.default_detail, code=exc.default_code) from None
        job.refresh_from_db()
        return Response({"job": JobSerializer(job).data}, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses=ProviderSerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def providers(self, request, pk=None):
        tenant = self.get_object()
        rows = Provider.objects.for_tenant(tenant).order_by("name")
        return Response(ProviderSerializer(rows, many=True).data)

    @extend_schema(responses=ScheduleSerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def schedules(self, request, pk=None):
        tenant = self.get_object()
        rows = Schedule.objects.for_tenant(tenant).order_by("name")
        return Response(ScheduleSerializer(rows, many=True).data)

    @extend_schema(
        parameters=[EventsQuerySerializer],
        responses={
            200: inline_serializer(
                "EventsPage",
                {
                    "events": EventSerializer(many=True),
                    "count": serializers.IntegerField(),
                    "next_offset": serializers.IntegerField(allow_null=True),
                    "failed_provider_ids": serializers.ListField(child=serializers.CharField()),
                    "truncated": serializers.BooleanField(),
                },
            ),
            **WIX_ERRORS,
        },
    )
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def events(self, request, pk=None):
        """Events of the tenant's connected calendars: every Wix page merged, then paged here."""
        tenant = self.get_object()
        query = EventsQuerySerializer(
            data={
                **request.query_params.dict(),
                "schedule_ids": request.query_params.getlist("schedule_ids"),
                "user_ids": request.query_params.getlist("user_ids"),
            }
        )
        query.is_valid(raise_exception=True)
        q = query.validated_data
        listing = selectors.events_list(
            tenant,
            start=q["start"],
            end=q["end"],
            schedule_ids=q["schedule_ids"],
            user_ids=q["user_ids"],
            include_titles=q["include_titles"],
        )
        page = listing.events[q["offset"] : q["offset"] + q["limit"]]
        following = q["offset"] + q["limit"]
        return Response(
            {
                "events": EventSerializer(page, many=True).data,
                "count": len(listing.events),
                "next_offset": following if following < len(listing.events) else None,
                "failed_provider_ids": listing.failed_provider_ids,
                "truncated": listing.truncated,
            }
        )


class ConnectionViewSet(viewsets.ReadOnlyModelViewSet):
    """Mirrored connections of the user's tenants, newest first, cursor-paged.

    Each action names the serializer of its input (`serializer_class=`), which is also what
    the browsable API builds its form from: none lists another tenant's rows.
    """

    serializer_class = ConnectionSerializer
    filterset_class = filters.ConnectionFilter

    def get_queryset(self):
        rows = Connection.objects.visible_to(self.request.user)
        rows = rows.select_related("schedule", "provider")
        if self.action in ("list", "retrieve"):
            rows = rows.only(*ConnectionSerializer.COLUMNS)
        return rows

    def _act(self, request, verb, **kwargs):
        connection = self.get_object()
        row = verb(connection, user=request.user, via=Via.API, **kwargs)
        return Response(ConnectionSerializer(row).data)

    @extend_schema(request=None, responses={200: ConnectionSerializer, **WIX_ERRORS})
    @action(detail=True, methods=["post"], serializer_class=NoInputSerializer)
    def disconnect(self, request, pk=None):
        """Disconnect in Wix; Wix removes exported bookings from the external calendar."""
        return self._act(request, connection_disconnect)

    @extend_schema(
        request=SyncConfigSerializer, responses={200: ConnectionSerializer, **WIX_ERRORS}
    )
    @action(
        detail=True, methods=["put"], url_path="sync-config", serializer_class=SyncConfigSerializer
    )
    def sync_config(self, request, pk=None):
        """Replace the sync config with the complete one given, if the provider allows it."""
        connection = self.get_object()
        wanted = self.get_serializer(data=request.data)
        wanted.is_valid(raise_exception=True)
        row = connection_set_sync_config(
            connection, wanted.to_sync_config(), user=request.user, via=Via.API
        )
        return Response(ConnectionSerializer(row).data)

    @extend_schema(request=None, responses={200: ConnectionSerializer, **WIX_ERRORS})
    @action(detail=True, methods=["post"], serializer_class=NoInputSerializer)
    def refresh(self, request, pk=None):
        """Read this connection from Wix now and update the mirror."""
        return self._act(request, connection_refresh)

    @extend_schema(responses=ConnectionChangeSerializer(many=True))
    @action(detail=True, methods=["get"], filter_backends=[])
    def changes(self, request, pk=None):
        """What refreshes and actions saw change on this connection, newest first."""
        connection = self.get_object()
        page = self.paginate_queryset(ConnectionChange.objects.filter(connection=connection))
        return self.get_paginated_response(ConnectionChangeSerializer(page, many=True).data)


def _schedule_and_provider(tenant: Tenant, data) -> tuple[Schedule, Provider]:
    schedule = Schedule.objects.filter(tenant=tenant, pk=data["schedule"]).first()
    provider = Provider.objects.filter(tenant=tenant, pk=data["provider"]).first()
    problems = {}
    if schedule is None:
        problems["schedule"] = ["No such schedule on this tenant."]
    if provider is None:
        problems["provider"] = ["No such provider on this tenant."]
    if problems:
        raise serializers.ValidationError(problems)
    return schedule, provider


def _connect_target(view) -> tuple[dict, Tenant, Schedule, Provider]:
    """Validate a connect request's body; return it with the tenant, schedule and provider."""
    request = view.request
    data = view.get_serializer(data=request.data)
    data.is_valid(raise_exception=True)
    # Another tenant's id and one that exists nowhere get the same 404 (access.NotVisible),
    # as do another tenant's schedule or provider and a missing one: nothing tells them apart.
    tenant = access.access_tenant(request.user, data.validated_data["tenant"], act=True)
    schedule, provider = _schedule_and_provider(tenant, data.validated_data)
    return data.validated_data, tenant, schedule, provider


class ConnectViewSet(viewsets.GenericViewSet):
    """Connect a schedule to a calendar: an OAuth link, or the account's email and password."""

    queryset = ConnectRequest.objects.none()
    pagination_class = None

    @extend_schema(
        request=OAuthConnectSerializer, responses={201: ConnectRequestSerializer, **CONNECT_ERRORS}
    )
    @action(detail=False, methods=["post"], serializer_class=OAuthConnectSerializer)
    def oauth(self, request):
        """Start an OAuth connect; send the calendar owner to `oauth_url`."""
        _, tenant, schedule, provider = _connect_target(self)
        started = oauth_connect_start(
            tenant=tenant,
            schedule=schedule,
            provider=provider,
            return_url=partial(oauth_return_url, request),
            user=request.user,
            via=Via.API,
        )
        return Response(
            ConnectRequestSerializer(started.request, context=self.get_serializer_context()).data,
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(
        request=CredentialsConnectSerializer,
        responses={201: ConnectionSerializer, **CONNECT_ERRORS},
    )
    @action(detail=False, methods=["post"], serializer_class=CredentialsConnectSerializer)
    def credentials(self, request):
        """Connect with the calendar account's email and password (never stored)."""
        data, tenant, schedule, provider = _connect_target(self)
        row = credentials_connect(
            tenant=tenant,
            schedule=schedule,
            provider=provider,
            user=request.user,
            via=Via.API,
            email=data["email"],
            password=data["password"],
        )
        return Response(ConnectionSerializer(row).data, status=status.HTTP_201_CREATED)


class ConnectRequestViewSet(viewsets.ReadOnlyModelViewSet):
    """Connect requests and how they ended (pending, connected, failed)."""

    serializer_class = ConnectRequestSerializer
    filterset_class = filters.TenantScopedFilter

    def get_queryset(self):
        return ConnectRequest.objects.visible_to(self.request.user)


class RefreshRunViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = RefreshRunSerializer
    filterset_class = filters.RefreshRunFilter

    def get_queryset(self):
        return RefreshRun.objects.visible_to(self.request.user)


class JobViewSet(mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Queued work: `status` is pending, started, success or failure; `result` when done."""

    serializer_class = JobSerializer

    @extend_schema(parameters=[OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH)])
    def retrieve(self, request, *args, **kwargs):
        return super().retrieve(request, *args, **kwargs)

    def get_queryset(self):
        return Job.objects.visible_to(self.request.user)
