"""Admin forms whose secrets are entered, never shown back."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError

from tenants.models import Tenant, WixApp, secret_hint
from tenants.services import tenants as services

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
