"""API tokens in the admin, for superusers: create one for a user (shown once), list, revoke.

Replaces django-rest-knox's own AuthToken admin, which lists digests and puts the new token
in a message (stored in a cookie until shown). Here the token is rendered once, in the
response to the add form, and the portal keeps only knox's hash of it. The list identifies
a token by its first characters (`token_key`, what knox looks tokens up by), never in full.
"""

from __future__ import annotations

from datetime import timedelta

import knox.admin  # noqa: F401 - knox registers its admin on import; it is replaced below
from django import forms
from django.contrib import admin
from django.template import engines
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from knox.models import AuthToken

from tenants.models import Via
from tenants.services.api_tokens import api_token_create, api_token_revoke, describe

DEFAULT_EXPIRY_DAYS = 90

# Inline, so the page that shows the token lives with the only code that renders it.
CREATED_TEMPLATE = """{% extends "admin/base_site.html" %}
{% block content %}
<p>API token for <strong>{{ token_object.user }}</strong>, {{ expires }}.</p>
<p>Copy it now: it is not shown again, and the portal keeps only a hash of it.</p>
<p><input type="text" readonly size="80" value="{{ token }}" id="api-token"
   onfocus="this.select()" aria-label="API token"></p>
<p>Use it as <code>Authorization: Token &lt;token&gt;</code>.</p>
<p><a href="{{ list_url }}">Back to API tokens</a></p>
{% endblock %}
"""


class TokenCreateForm(forms.ModelForm):
    expiry_days = forms.IntegerField(
        label="Expires after (days)",
        min_value=0,
        max_value=3650,
        initial=DEFAULT_EXPIRY_DAYS,
        help_text="0 for a token that never expires.",
    )

    class Meta:
        model = AuthToken
        fields = ["user"]


class AuthTokenAdmin(admin.ModelAdmin):
    list_display = ["token_prefix", "user", "created", "expiry", "is_expired"]
    list_filter = ["created", "expiry"]
    search_fields = ["user__username", "token_key"]
    ordering = ["-created"]
    list_select_related = ["user"]
    autocomplete_fields = ["user"]

    # --- Superusers only --------------------------------------------------------------

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    def has_add_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        # A token is created, then revoked; nothing in between is editable.
        return False

    # --- Pages ------------------------------------------------------------------------

    @admin.display(description="Token starts with", ordering="token_key")
    def token_prefix(self, token: AuthToken) -> str:
        return f"{token.token_key}…"

    @admin.display(description="Expired", boolean=True)
    def is_expired(self, token: AuthToken) -> bool:
        return token.expiry is not None and token.expiry <= timezone.now()

    def get_fields(self, request, obj=None):
        return (
            ["user", "expiry_days"]
            if obj is None
            else ["token_prefix", "user", "created", "expiry"]
        )

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else ["token_prefix", "user", "created", "expiry"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = TokenCreateForm
        return super().get_form(request, obj, change=change, **kwargs)

    def save_model(self, request, obj, form, change):
        days = form.cleaned_data["expiry_days"]
        expiry = timedelta(days=days) if days else None
        token, plain = api_token_create(obj.user, expiry=expiry, user=request.user, via=Via.ADMIN)
        # The admin goes on with `obj` (its change message, response_add): it becomes the row.
        for field in AuthToken._meta.concrete_fields:
            setattr(obj, field.attname, getattr(token, field.attname))
        obj._state.adding = False
        obj.plain_token = plain

    def response_add(self, request, obj, post_url_continue=None):
        expires = f"expires {obj.expiry:%Y-%m-%d %H:%M} UTC" if obj.expiry else "never expires"
        context = {
            **self.admin_site.each_context(request),
            "title": "API token created",
            "token_object": obj,
            "token": obj.plain_token,
            "expires": expires,
            "list_url": reverse("admin:knox_authtoken_changelist"),
            "opts": self.opts,
        }
        template = engines["django"].from_string(CREATED_TEMPLATE)
        response = TemplateResponse(request, template, context)
        # The token is in this page only: no cache may keep it.
        response["Cache-Control"] = "no-store"
        return response

    def delete_model(self, request, obj):
        api_token_revoke(obj, user=request.user, via=Via.ADMIN)

    def delete_queryset(self, request, queryset):
        for token in queryset.select_related("user"):
            api_token_revoke(token, user=request.user, via=Via.ADMIN)

    def get_deleted_objects(self, objs, request):
        _, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        return [f"API token {describe(t)}" for t in objs], counts, perms_needed, protected


if admin.site.is_registered(AuthToken):
    admin.site.unregister(AuthToken)
admin.site.register(AuthToken, AuthTokenAdmin)
