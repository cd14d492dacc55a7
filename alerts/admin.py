"""The alerts admin: the outbox (superusers read what the portal would have emailed), and
webhook endpoints with their deliveries (each staff user their own; superusers all)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from common.events import SUBSCRIBABLE
from tenants.models import Tenant, Via

from .models import (
    Delivery,
    DeliveryAttempt,
    DeliveryState,
    OutboxMessage,
    WebhookEndpoint,
    WebhookSecret,
)
from .services import endpoints


@admin.register(OutboxMessage)
class OutboxMessageAdmin(admin.ModelAdmin):
    list_display = ["created_at", "recipients", "subject"]
    search_fields = ["subject", "to"]
    date_hierarchy = "created_at"
    fields = ["created_at", "from_email", "recipients", "subject", "headers", "text", "html_part"]
    readonly_fields = fields

    # Emails name tenants and people: the outbox is the superusers'.
    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    @admin.display(description="to")
    def recipients(self, obj):
        return ", ".join(obj.to)

    @admin.display(description="HTML part")
    def html_part(self, obj):
        # Shown as source, never rendered: an email's HTML is not the admin's to run.
        return (
            format_html("<pre style='white-space: pre-wrap'>{}</pre>", obj.html)
            if obj.html
            else "—"
        )


# --- Webhooks ------------------------------------------------------------------------------

NEWEST_DELIVERIES = 50


class WebhookEndpointForm(forms.ModelForm):
    event_types = forms.MultipleChoiceField(
        choices=[(t.value, f"{t.value} ({t.label})") for t in SUBSCRIBABLE],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="None ticked: every event type, including ones added later.",
    )
    # Set by the admin for the request: a new endpoint is its user's.
    acting_user = None

    class Meta:
        model = WebhookEndpoint
        fields = ["url", "description", "event_types", "tenants", "is_enabled"]
        widgets = {"url": forms.URLInput(attrs={"size": 80})}
        help_texts = {"url": "https:// and a public address; the secret is shown once saved."}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.owner = self.instance.owner if self.instance.pk else self.acting_user
        if "tenants" in self.fields:
            self.fields["tenants"].queryset = Tenant.objects.visible_to(self.owner)
            self.fields[
                "tenants"
            ].help_text = "None chosen: every tenant its owner can see, now and later."

    def clean(self):
        cleaned = super().clean()
        url = cleaned.get("url")
        try:
            endpoints.validate(
                owner=self.owner,
                url=url if url and url != self.instance.url else None,
                description=cleaned.get("description"),
                event_types=cleaned.get("event_types"),
                tenant_ids=[t.pk for t in cleaned.get("tenants") or []],
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                self.add_error(field if field in self.fields else None, errors)
        return cleaned


class ReplaySinceForm(forms.Form):
    since = forms.DateTimeField(
        label="Failed since",
        help_text="YYYY-MM-DD HH:MM, in the portal's time zone.",
        widget=forms.DateTimeInput(attrs={"size": 20}),
    )

    def clean_since(self):
        since = self.cleaned_data["since"]
        if since > timezone.now():
            raise ValidationError("Choose a time in the past.")
        return since


class ReadOnlyInline(admin.TabularInline):
    """Rows shown on a page the user may see already (its owner's, or a superuser's), never
    added, changed or deleted there."""

    def has_view_permission(self, request, obj=None):
        # Shown on a page the user may see already (its owner's, or a superuser's).
        return request.user.is_active and request.user.is_staff

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class DeliveryInline(ReadOnlyInline):
    """The endpoint's newest deliveries; each links to its page with the attempts."""

    model = Delivery
    fk_name = "endpoint"
    verbose_name_plural = f"deliveries (newest {NEWEST_DELIVERIES})"
    fields = [
        "delivery_link",
        "event_type",
        "state",
        "attempts",
        "last_status",
        "next_attempt_at",
        "msg_id",
    ]
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = False
    ordering = ["-created_at", "-id"]

    def get_queryset(self, request):
        return super().get_queryset(request).order_by("-created_at", "-id")

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)

        class Newest(formset):
            def get_queryset(self):
                if not hasattr(self, "_newest"):
                    rows = super().get_queryset()
                    pks = list(rows.values_list("pk", flat=True)[:NEWEST_DELIVERIES])
                    self._newest = rows.filter(pk__in=pks)
                return self._newest

        return Newest

    @admin.display(description="delivery")
    def delivery_link(self, obj):
        url = reverse("admin:alerts_delivery_change", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, f"{obj.created_at:%Y-%m-%d %H:%M:%S}")


class OwnedAdmin(admin.ModelAdmin):
    """Any active staff user manages their own endpoints; superusers every one."""

    def _may(self, request, obj=None) -> bool:
        user = request.user
        if not (user.is_active and user.is_staff):
            return False
        return obj is None or user.is_superuser or self.owner_of(obj) == user.pk

    def owner_of(self, obj) -> int:
        raise NotImplementedError

    def has_module_permission(self, request):
        return self._may(request)

    def has_view_permission(self, request, obj=None):
        return self._may(request, obj)


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(OwnedAdmin):
    form = WebhookEndpointForm
    inlines = [DeliveryInline]
    list_display = ["__str__", "host", "is_enabled", "disabled_reason", "owner", "created_at"]
    list_filter = ["is_enabled", "disabled_reason"]
    search_fields = ["description", "url"]
    list_select_related = ["owner"]
    actions = ["send_test", "rotate_secret", "replay_failed"]

    def owner_of(self, obj) -> int:
        return obj.owner_id

    def get_queryset(self, request):
        return super().get_queryset(request).owned_by(request.user)

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else []

    def has_add_permission(self, request):
        return self._may(request)

    def has_change_permission(self, request, obj=None):
        return self._may(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._may(request, obj)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        return type(form.__name__, (form,), {"acting_user": request.user})

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["url", "description", "event_types", "tenants"]
        return [
            "url",
            "description",
            "event_types",
            "tenants",
            "is_enabled",
            "disabled_reason",
            "disabled_at",
            "failing_since",
            "signing_secrets",
            "owner",
            "created_at",
        ]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return [
            "disabled_reason",
            "disabled_at",
            "failing_since",
            "signing_secrets",
            "owner",
            "created_at",
        ]

    @admin.display(description="signing secrets")
    def signing_secrets(self, obj):
        now = timezone.now()
        valid = list(
            WebhookSecret.objects.filter(endpoint=obj).valid_at(now).order_by("-created_at")
        )
        if not valid:
            return "none: rotate to make one"
        lines = [
            f"made {s.created_at:%Y-%m-%d %H:%M} UTC, "
            + (f"signs until {s.expires_at:%Y-%m-%d %H:%M} UTC" if s.expires_at else "current")
            for s in valid
        ]
        return "; ".join(lines) + " (never shown again: rotate for a new one)"

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        tenant_ids = [t.pk for t in data.get("tenants") or []]
        if change:
            saved = endpoints.endpoint_update(
                obj,
                url=data["url"],
                description=data["description"],
                event_types=data["event_types"],
                tenant_ids=tenant_ids,
                is_enabled=data["is_enabled"],
                user=request.user,
                via=Via.ADMIN,
            )
        else:
            saved, obj.plain_secret = endpoints.endpoint_create(
                owner=request.user,
                url=data["url"],
                description=data["description"],
                event_types=data["event_types"],
                tenant_ids=tenant_ids,
                user=request.user,
                via=Via.ADMIN,
            )
        # The admin goes on with `obj` (its log entry, response_add): it becomes the row.
        for field in WebhookEndpoint._meta.concrete_fields:
            setattr(obj, field.attname, getattr(saved, field.attname))
        obj._state.adding = False

    def save_related(self, request, form, formsets, change):
        # The service set the tenants, in its audited transaction; the read-only inline's
        # formset saves nothing but is still asked (the change message reads it).
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def response_add(self, request, obj, post_url_continue=None):
        return self._secrets_page(
            request, "Webhook endpoint added", [(obj, obj.plain_secret, None)]
        )

    def _secrets_page(self, request, title, rows):
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.opts,
            "rows": rows,
            "list_url": reverse("admin:alerts_webhookendpoint_changelist"),
        }
        response = TemplateResponse(request, "admin/alerts/webhookendpoint/secret.html", context)
        # The secret is in this page only: no cache may keep it.
        response["Cache-Control"] = "no-store"
        return response

    def delete_model(self, request, obj):
        endpoints.endpoint_delete(obj, user=request.user, via=Via.ADMIN)

    def delete_queryset(self, request, queryset):
        for endpoint in queryset:
            endpoints.endpoint_delete(endpoint, user=request.user, via=Via.ADMIN)

    @admin.action(description="Send a test event")
    def send_test(self, request, queryset):
        for endpoint in queryset:
            try:
                delivery = endpoints.endpoint_send_test(endpoint, user=request.user, via=Via.ADMIN)
            except endpoints.Refused as exc:
                self.message_user(request, f"{endpoint}: {exc}", messages.WARNING)
                continue
            delivery.refresh_from_db()
            self.message_user(request, f"{endpoint}: {describe(delivery)}", _level(delivery))

    @admin.action(description="Rotate the signing secret (the old one signs 24 hours more)")
    def rotate_secret(self, request, queryset):
        now = timezone.now()
        rows = [
            (
                endpoint,
                endpoints.endpoint_rotate_secret(
                    endpoint, user=request.user, via=Via.ADMIN, now=now
                ),
                now + endpoints.SECRET_OVERLAP,
            )
            for endpoint in queryset
        ]
        return self._secrets_page(request, "Signing secrets rotated", rows)

    @admin.action(description="Replay failed deliveries since…")
    def replay_failed(self, request, queryset):
        chosen = list(queryset)
        form = ReplaySinceForm(request.POST if request.POST.get("post") == "yes" else None)
        if not form.is_valid():
            return TemplateResponse(
                request,
                "admin/alerts/webhookendpoint/replay_since.html",
                {
                    **self.admin_site.each_context(request),
                    "opts": self.opts,
                    "title": "Replay failed deliveries",
                    "form": form,
                    "endpoints": chosen,
                    "limit": endpoints.REPLAY_MAX,
                    "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
                    "cancel_url": request.get_full_path(),
                },
            )
        since = form.cleaned_data["since"]
        for endpoint in chosen:
            try:
                replays = endpoints.deliveries_replay_failed(
                    endpoint, since=since, user=request.user, via=Via.ADMIN
                )
            except endpoints.Refused as exc:
                self.message_user(request, f"{endpoint}: {exc}", messages.WARNING)
                continue
            self.message_user(
                request,
                f"{endpoint}: {len(replays)} deliver{'y' if len(replays) == 1 else 'ies'} "
                "replayed.",
                messages.SUCCESS,
            )
        return None


def describe(delivery: Delivery) -> str:
    """Where a delivery stands, in words: for the admin's messages."""
    webhook_id = f"webhook-id {delivery.msg_id}"
    attempt = delivery.attempt_log.order_by("-number").first()
    answer = ""
    if attempt is not None:
        answer = (
            f"answered {attempt.status_code}"
            if attempt.status_code
            else attempt.get_error_display().lower()
        )
    if delivery.state == DeliveryState.SUCCEEDED:
        return f"delivered, {answer} ({webhook_id})."
    if delivery.state == DeliveryState.PENDING:
        if attempt is None:
            return f"queued ({webhook_id})."
        return (
            f"attempt {attempt.number} failed: {answer}; the next is due "
            f"{delivery.next_attempt_at:%Y-%m-%d %H:%M:%S} UTC ({webhook_id})."
        )
    return f"{delivery.get_state_display().lower()}: {answer} ({webhook_id})."


def _level(delivery: Delivery) -> int:
    return messages.SUCCESS if delivery.state == DeliveryState.SUCCEEDED else messages.WARNING


class DeliveryAttemptInline(ReadOnlyInline):
    model = DeliveryAttempt
    fields = [
        "number",
        "started_at",
        "duration_ms",
        "status_code",
        "error",
        "response_excerpt",
        "retry_at",
    ]
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    ordering = ["-number"]


@admin.register(Delivery)
class DeliveryAdmin(OwnedAdmin):
    """The delivery log of the user's endpoints, read-only, with each attempt; replayable."""

    inlines = [DeliveryAttemptInline]
    list_display = [
        "created_at",
        "endpoint",
        "event_type",
        "state",
        "attempts",
        "last_status",
        "next_attempt_at",
        "is_test",
    ]
    list_filter = ["state", "event_type", "is_test"]
    search_fields = ["msg_id"]
    list_select_related = ["endpoint"]
    date_hierarchy = "created_at"
    actions = ["replay"]
    fields = [
        "endpoint",
        "tenant",
        "msg_id",
        "event_type",
        "state",
        "attempts",
        "last_status",
        "next_attempt_at",
        "replay_of",
        "is_test",
        "created_at",
        "finished_at",
        "body_pretty",
    ]
    readonly_fields = fields

    def owner_of(self, obj) -> int:
        return obj.endpoint.owner_id

    def get_queryset(self, request):
        owned = WebhookEndpoint.objects.owned_by(request.user)
        return super().get_queryset(request).filter(endpoint__in=owned)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="body (as signed)")
    def body_pretty(self, obj):
        return format_html("<pre style='white-space: pre-wrap'>{}</pre>", obj.body)

    @admin.action(description="Replay (same webhook-id and body)")
    def replay(self, request, queryset):
        for delivery in queryset.select_related("endpoint", "tenant"):
            try:
                replay = endpoints.delivery_replay(delivery, user=request.user, via=Via.ADMIN)
            except endpoints.Refused as exc:
                self.message_user(request, f"{delivery}: {exc}", messages.WARNING)
                continue
            replay.refresh_from_db()
            self.message_user(
                request, f"Replay of {delivery.msg_id}: {describe(replay)}", _level(replay)
            )
