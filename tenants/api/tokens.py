"""/api/v1/me/tokens/: a user's own API tokens, listed by their first characters, revocable.

Any staff user may read and revoke their own tokens, with or without tenants: the route
is about the user, not a tenant, so it does not use the tenant permission. Another user's
token is a 404, as a token that does not exist. Neither the token nor knox's digest of it
(its primary key) is ever shown.
"""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from knox.models import AuthToken
from rest_framework import mixins, permissions, serializers, viewsets

from tenants.models import Via
from tenants.services.api_tokens import api_token_revoke


class MyTokenSerializer(serializers.ModelSerializer):
    token_key = serializers.CharField(
        read_only=True, help_text="The token's first characters: what identifies it."
    )
    current = serializers.SerializerMethodField(help_text="True for the token of this request.")

    class Meta:
        model = AuthToken
        fields = ["token_key", "created", "expiry", "current"]
        read_only_fields = fields

    def get_current(self, token: AuthToken) -> bool:
        request = self.context.get("request")
        used = getattr(request, "auth", None)
        return isinstance(used, AuthToken) and used.digest == token.digest


TOKEN_KEY = OpenApiParameter(
    "token_key",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    description="The token's first characters, as listed.",
)


class MyTokenViewSet(mixins.ListModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """The API tokens of the request's user, newest first; DELETE one to revoke it."""

    serializer_class = MyTokenSerializer
    permission_classes = [permissions.IsAuthenticated, permissions.IsAdminUser]
    # A user holds a handful of tokens: one list, no pages, no filters.
    pagination_class = None
    filter_backends = []
    lookup_field = "token_key"

    def get_queryset(self):
        return AuthToken.objects.filter(user=self.request.user).order_by("-created")

    @extend_schema(parameters=[TOKEN_KEY])
    def destroy(self, request, *args, **kwargs):
        """Revoke the token: the next request with it is a 401."""
        return super().destroy(request, *args, **kwargs)

    def get_object(self):
        # token_key is not unique in knox's table; a user's own two tokens sharing their
        # first 15 characters would be a 2**-60 coincidence, and either is theirs.
        token = self.get_queryset().filter(token_key=self.kwargs["token_key"]).first()
        if token is None:
            raise Http404
        return token

    def perform_destroy(self, instance: AuthToken) -> None:
        api_token_revoke(instance, user=self.request.user, via=Via.API)
