import json

from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.utils.html import format_html
from django.views.decorators.debug import sensitive_post_parameters
from simple_history.admin import SimpleHistoryAdmin

from common.badges import badge
from tenants import access, audit, services
from tenants.admin_history import HistoryOutOfReachIs404
from tenants.admin_scoping import TenantScopedAdmin
from tenants.models import AuditEvent, Tenant, TenantMembership, WixApp, secret_hint

KEEP_HELP = "Leave blank to keep the current secret."
ADD_HELP = "Stored encrypted; it is never shown again."


def secret_form_field(label: str) -> forms.CharField:
    return forms.CharField(
        label=label,
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )


class SecretsNotReported:
    """Admin mixin: Django's error reports never show the secrets posted to the change form."""

    secret_post_fields = ("api_key", "app_secret")

    def changeform_view(self, request, *args, **kwargs):
        return sensitive_post_parameters(*self.secret_post_fields)(super().changeform_view)(
            request, *args, **kwargs
        )


class WriteOnlySecretsForm(forms.ModelForm):
    """Secrets are entered, never shown: on change, a blank field keeps the stored value.

    A field named `clear_<secret>` (a checkbox), when present and ticked, empties the secret.
    """

    secret_fields: tuple[str, ...] = ()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        adding = self.instance._state.adding
        for name in self.secret_fields:
            # The decrypted value would otherwise sit in the form's initial data.
            self.initial.pop(name, None)
            field = self.fields.get(name)
            if field is None:
                continue
            if adding:
                field.required = not self._meta.model._meta.get_field(name).blank
                field.help_text = f"Currently {secret_hint('')}. {ADD_HELP}"
            else:
                field.required = False
                field.help_text = (
                    f"Currently {secret_hint(getattr(self.instance, name))}. {KEEP_HELP}"
                )

    def clean(self):
        cleaned_data = super().clean()
        if not self.instance._state.adding:
            for name in self.secret_fields:
                if name in self.fields and not cleaned_data.get(name):
                    if cleaned_data.get(f"clear_{name}"):
                        cleaned_data[name] = ""
                    else:
                        cleaned_data[name] = getattr(self.instance, name)
        return cleaned_data


class WixAppForm(WriteOnlySecretsForm):
    secret_fields = ("app_secret",)
    app_secret = secret_form_field("App secret")

    class Meta:
        model = WixApp
        fields = ["name", "app_id", "app_secret"]


class TenantForm(WriteOnlySecretsForm):
    secret_fields = ("api_key",)
    api_key = secret_form_field("API key")
    clear_api_key = forms.BooleanField(
        label="Remove the API key",
        required=False,
        help_text="Tick to remove the stored API key, e.g. when switching to a Wix app.",
    )

    class Meta:
        model = Tenant
        fields = ["name", "site_id", "is_active", "notes", "wix_app", "instance_id", "api_key"]

    def _post_clean(self):
        super()._post_clean()
        # Only once the model's own validation passed: then ask Wix whether the instance is
        # really on this site (one call, and only when the way in is new or changed).
        if self.errors or not (self.changed_data or self.instance._state.adding):
            return
        if services.way_in_changed(self.instance):
            try:
                services.confirm_instance_site(self.instance)
            except ValidationError as exc:
                self._update_errors(exc)


class SuperuserOnly:
    """Only superusers see or touch these records; staff never see the admin at all."""

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    def has_add_permission(self, request, *args):
        return request.user.is_active and request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser


def staff_users():
    """Who can be given a membership: staff accounts (the admin is for staff only)."""
    return get_user_model().objects.filter(is_staff=True).order_by("username")


class TenantMembershipInline(SuperuserOnly, admin.TabularInline):
    """The tenant's members on its change page; for the control room's tenant admin too."""

    model = TenantMembership
    fields = ["user", "role", "created_at"]
    readonly_fields = ["created_at"]
    extra = 0
    verbose_name = "member"
    verbose_name_plural = "Members (staff who may see this tenant; operators may act)"

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user":
            kwargs["queryset"] = staff_users()
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(TenantMembership)
class TenantMembershipAdmin(HistoryOutOfReachIs404, SuperuserOnly, SimpleHistoryAdmin):
    """Who may see which tenant. Granting, changing and removing access is audited."""

    list_display = ["user", "tenant", "role", "created_at"]
    list_filter = ["role", "tenant", "user__is_active"]
    search_fields = ["user__username", "user__email", "tenant__name"]
    list_select_related = ["user", "tenant"]
    fields = ["user", "tenant", "role", "created_at"]
    readonly_fields = ["created_at"]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user":
            kwargs["queryset"] = staff_users()
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if not change or form.changed_data:
            record_membership(request, obj, "change_access" if change else "grant_access")

    def delete_model(self, request, obj):
        record_membership(request, obj, "revoke_access")
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for membership in queryset.select_related("user", "tenant"):
            record_membership(request, membership, "revoke_access")
        super().delete_queryset(request, queryset)


def record_membership(request, membership: TenantMembership, action: str) -> None:
    audit.record(
        user=request.user,
        action=action,
        tenant=membership.tenant,
        target=membership,
        parameters={"user": membership.user.get_username(), "role": membership.role},
    )


@admin.register(AuditEvent)
class AuditEventAdmin(TenantScopedAdmin):
    """The audit trail, read-only. Events without a tenant are for superusers only."""

    tenant_path = "tenant"
    read_only_model = True
    actions = None
    list_display = [
        "created_at",
        "who",
        "tenant",
        "action",
        "target_repr",
        "outcome_badge",
        "error_code",
        "wix_request_id",
    ]
    list_display_links = ["created_at"]
    list_filter = ["tenant", "action", "outcome", "via"]
    search_fields = [
        "username",
        "action",
        "target_repr",
        "target_id",
        "error_code",
        "wix_request_id",
        "message",
        "tenant__name",
    ]
    list_select_related = ["tenant"]
    date_hierarchy = "created_at"
    fields = [
        "created_at",
        "who",
        "tenant",
        "via",
        "action",
        "target_type",
        "target_id",
        "target_repr",
        "outcome_badge",
        "error_code",
        "message",
        "wix_request_id",
        "parameters_pretty",
    ]
    readonly_fields = fields

    def has_view_permission(self, request, obj=None):
        if obj is not None and obj.tenant_id is None:
            return request.user.is_active and request.user.is_staff and request.user.is_superuser
        return super().has_view_permission(request, obj)

    @admin.display(description="who", ordering="username")
    def who(self, obj):
        return obj.username or "system"

    @admin.display(description="outcome", ordering="outcome")
    def outcome_badge(self, obj):
        return badge(obj.outcome, obj.get_outcome_display())

    @admin.display(description="parameters")
    def parameters_pretty(self, obj):
        text = json.dumps(obj.parameters, indent=2, sort_keys=True, ensure_ascii=False)
        return format_html('<pre style="margin: 0; white-space: pre-wrap">{}</pre>', text)


@admin.register(WixApp)
class WixAppAdmin(SecretsNotReported, HistoryOutOfReachIs404, SuperuserOnly, SimpleHistoryAdmin):
    """The agency's OAuth app credentials: for superusers only."""

    form = WixAppForm
    list_display = ["name", "app_id", "updated_at"]
    search_fields = ["name", "app_id"]
    readonly_fields = ["created_at", "updated_at"]
    fields = ["name", "app_id", "app_secret", "created_at", "updated_at"]


class TenantAdmin(SecretsNotReported, HistoryOutOfReachIs404, SimpleHistoryAdmin):
    form = TenantForm
    list_display = ["name", "site_id", "is_active", "auth_method_display", "credentials_status"]
    list_filter = ["is_active", "credentials_status", "wix_app"]
    search_fields = ["name", "site_id"]
    list_select_related = ["wix_app"]
    readonly_fields = [
        "credentials_status",
        "credentials_checked_at",
        "credentials_error",
        "created_at",
        "updated_at",
    ]

    def get_readonly_fields(self, request, obj=None):
        readonly = [*super().get_readonly_fields(request, obj), "auth_method_display"]
        if obj is not None and not access.can_change_way_in(request.user, obj):
            readonly += ["site_id", "wix_app", "api_key_display"]
        return readonly

    def get_fieldsets(self, request, obj=None):
        if obj is not None and not access.can_change_way_in(request.user, obj):
            # Operators and viewers see how the tenant reaches Wix, never the app instance
            # id or the key, and cannot change it (tenants.access.WAY_IN_FIELDS).
            way_in = ("Way in (changed by agency admins)", {"fields": self.way_in_summary})
        else:
            api_key_fields = ["api_key"] if obj is None else ["api_key", "clear_api_key"]
            way_in = (
                "Way in: a Wix app instance (OAuth) or an API key, not both",
                {"fields": ["wix_app", "instance_id", *api_key_fields]},
            )
        return [
            (None, {"fields": ["name", "site_id", "is_active", "notes"]}),
            way_in,
            (
                "Credentials check",
                {"fields": ["credentials_status", "credentials_checked_at", "credentials_error"]},
            ),
            (None, {"fields": ["created_at", "updated_at"]}),
        ]

    way_in_summary = ["auth_method_display", "wix_app", "api_key_display"]

    @admin.display(description="Auth method")
    def auth_method_display(self, obj):
        method = obj.auth_method
        return method.label if method else "—"

    @admin.display(description="API key")
    def api_key_display(self, obj):
        return secret_hint(obj.api_key).capitalize()

    def save_model(self, request, obj, form, change):
        credentials = {"wix_app", "instance_id", "api_key", "clear_api_key"}
        if change and credentials & set(form.changed_data):
            obj.mark_credentials_unverified()
        super().save_model(request, obj, form, change)


from . import admin_tokens  # noqa: E402, F401  (the API token admin, in place of knox's)
