"""/api/v1/webhook-endpoints/: the request user's webhook endpoints (a superuser's: all),
as thin callers of `alerts.services.endpoints`.

Like /me/tokens/, the route is about the user, not a tenant: any staff user manages their
own endpoints, and another user's endpoint is a 404, as one that does not exist. The owner's
tenant access bounds what an endpoint hears. The signing secret is in two responses only,
create and rotate-secret, both `Cache-Control: no-store`.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from common.api_errors import Conflict, ErrorSerializer
from common.ids import MAX_ID
from tenants.models import Via

from ..models import Delivery, WebhookEndpoint
from ..services import endpoints
from ..webhooks import payloads
from .serializers import (
    CreatedWebhookEndpointSerializer,
    DeliverySerializer,
    ReplayQueuedSerializer,
    ReplaySerializer,
    RotatedSecretSerializer,
    TestSentSerializer,
    WebhookEndpointSerializer,
)

CONFLICT = {
    409: OpenApiResponse(
        ErrorSerializer,
        description="The endpoint is turned off, or the delivery is still being attempted.",
    )
}

# The service's field names where they differ from the API's.
FIELD_NAMES = {"tenant_ids": "tenants"}


def _calling(service, *args, **kwargs):
    """Call a service verb; its ValidationError is a 400 by field, Refused a 409."""
    try:
        return service(*args, **kwargs)
    except DjangoValidationError as exc:
        detail = (
            {FIELD_NAMES.get(k, k): v for k, v in exc.message_dict.items()}
            if hasattr(exc, "error_dict")
            else {"non_field_errors": exc.messages}
        )
        raise serializers.ValidationError(detail) from None
    except endpoints.Refused as exc:
        raise Conflict(str(exc)) from None


def _no_store(response: Response) -> Response:
    response["Cache-Control"] = "no-store"
    return response


class WebhookEndpointViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Your webhook endpoints, newest first (a superuser's: every one)."""

    serializer_class = WebhookEndpointSerializer
    permission_classes = [permissions.IsAuthenticated, permissions.IsAdminUser]
    filter_backends = []

    def get_queryset(self):
        return (
            WebhookEndpoint.objects.owned_by(self.request.user)
            .select_related("owner")
            .prefetch_related("tenants")
            .order_by("-id")
        )

    @extend_schema(responses={201: CreatedWebhookEndpointSerializer})
    def get_object(self):
        # An id no row can have (not a number, beyond 64 bits) is a 404, not a database error.
        given = str(self.kwargs.get(self.lookup_url_kwarg or self.lookup_field, ""))
        if not (given.isascii() and given.isdigit()) or int(given) > MAX_ID:
            raise Http404
        return super().get_object()

    def create(self, request, *args, **kwargs):
        """Create an endpoint owned by you; the response shows its signing secret, once.

        Only a URL: every event type, about every tenant you can see.
        """
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        endpoint, secret = _calling(
            endpoints.endpoint_create,
            owner=request.user,
            url=data["url"],
            description=data.get("description", ""),
            event_types=data.get("event_types", ()),
            tenant_ids=data.get("tenants", ()),
            user=request.user,
            via=Via.API,
        )
        endpoint = self.get_queryset().get(pk=endpoint.pk)
        endpoint.secret = secret
        body = CreatedWebhookEndpointSerializer(endpoint, context=self.get_serializer_context())
        return _no_store(Response(body.data, status=status.HTTP_201_CREATED))

    def perform_update(self, serializer):
        data = serializer.validated_data
        given = {name: data[name] for name in ("url", "description", "event_types") if name in data}
        if "tenants" in data:
            given["tenant_ids"] = data["tenants"]
        if "is_enabled" in data:
            given["is_enabled"] = data["is_enabled"]
        saved = _calling(
            endpoints.endpoint_update,
            serializer.instance,
            user=self.request.user,
            via=Via.API,
            **given,
        )
        serializer.instance = self.get_queryset().get(pk=saved.pk)

    def perform_destroy(self, instance):
        endpoints.endpoint_delete(instance, user=self.request.user, via=Via.API)

    @extend_schema(request=None, responses={201: RotatedSecretSerializer})
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request, pk=None):
        """Make a new signing secret, shown in this response only; the previous one keeps
        signing alongside it for 24 hours."""
        now = timezone.now()
        secret = _calling(
            endpoints.endpoint_rotate_secret,
            self.get_object(),
            user=request.user,
            via=Via.API,
            now=now,
        )
        until = now + endpoints.SECRET_OVERLAP
        body = {"secret": secret, "previous_valid_until": payloads.iso(until)}
        return _no_store(Response(body, status=status.HTTP_201_CREATED))

    @extend_schema(request=None, responses={202: TestSentSerializer, **CONFLICT})
    @action(detail=True, methods=["post"])
    def test(self, request, pk=None):
        """Queue a `webhook.test` event to the endpoint; 409 when it is turned off."""
        delivery = _calling(
            endpoints.endpoint_send_test, self.get_object(), user=request.user, via=Via.API
        )
        body = {"delivery_id": delivery.pk, "webhook_id": delivery.msg_id}
        return Response(body, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses=DeliverySerializer(many=True))
    @action(detail=True, methods=["get"])
    def deliveries(self, request, pk=None):
        """The endpoint's deliveries, newest first, each with its attempts."""
        endpoint = self.get_object()
        rows = Delivery.objects.filter(endpoint=endpoint).prefetch_related("attempt_log")
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(DeliverySerializer(page, many=True).data)

    @extend_schema(request=ReplaySerializer, responses={202: ReplayQueuedSerializer, **CONFLICT})
    @action(detail=True, methods=["post"])
    def replay(self, request, pk=None):
        """Send one delivery again (`delivery_id`, the same `webhook-id`), or every failed
        delivery since a time (`failed_since`); 409 when the endpoint is off or the delivery
        is still being attempted."""
        endpoint = self.get_object()
        asked = ReplaySerializer(data=request.data)
        asked.is_valid(raise_exception=True)
        data = asked.validated_data
        if "delivery_id" in data:
            delivery = Delivery.objects.filter(endpoint=endpoint, pk=data["delivery_id"]).first()
            if delivery is None:
                raise serializers.ValidationError(
                    {"delivery_id": ["No such delivery of this endpoint."]}
                )
            _calling(endpoints.delivery_replay, delivery, user=request.user, via=Via.API)
            queued = 1
        else:
            replays = _calling(
                endpoints.deliveries_replay_failed,
                endpoint,
                since=data["failed_since"],
                user=request.user,
                via=Via.API,
            )
            queued = len(replays)
        return Response({"queued": queued}, status=status.HTTP_202_ACCEPTED)
