from django import forms
from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from tenants.models import Tenant, WixApp, secret_hint

KEEP_HELP = "Leave blank to keep the current secret."
ADD_HELP = "Stored encrypted; it is never shown again."


def secret_form_field(label: str) -> forms.CharField:
    return forms.CharField(
        label=label,
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
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


@admin.register(WixApp)
class WixAppAdmin(SimpleHistoryAdmin):
    form = WixAppForm
    list_display = ["name", "app_id", "updated_at"]
    search_fields = ["name", "app_id"]
    readonly_fields = ["created_at", "updated_at"]
    fields = ["name", "app_id", "app_secret", "created_at", "updated_at"]


@admin.register(Tenant)
class TenantAdmin(SimpleHistoryAdmin):
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

    def get_fieldsets(self, request, obj=None):
        api_key_fields = ["api_key"] if obj is None else ["api_key", "clear_api_key"]
        return [
            (None, {"fields": ["name", "site_id", "is_active", "notes"]}),
            (
                "Way in: a Wix app instance (OAuth) or an API key, not both",
                {"fields": ["wix_app", "instance_id", *api_key_fields]},
            ),
            (
                "Credentials check",
                {"fields": ["credentials_status", "credentials_checked_at", "credentials_error"]},
            ),
            (None, {"fields": ["created_at", "updated_at"]}),
        ]

    @admin.display(description="Auth method")
    def auth_method_display(self, obj):
        method = obj.auth_method
        return method.label if method else "—"

    def save_model(self, request, obj, form, change):
        credentials = {"wix_app", "instance_id", "api_key", "clear_api_key"}
        if change and credentials & set(form.changed_data):
            obj.mark_credentials_unverified()
        super().save_model(request, obj, form, change)
