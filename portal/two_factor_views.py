"""The admin's login form with its second factor, and the enrolment page (portal.two_factor)."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.admin.forms import AdminAuthenticationForm
from django.template.response import TemplateResponse
from django.views.decorators.debug import sensitive_post_parameters

from . import two_factor

CODE_WIDGET_ATTRS = {"autocomplete": "one-time-code", "spellcheck": "false", "size": 12}


class PortalLoginForm(AdminAuthenticationForm):
    """Django's admin login, plus the code of a user's authenticator app when they have one."""

    otp_token = forms.CharField(
        label="Two-factor code",
        required=False,
        max_length=32,
        widget=forms.TextInput(attrs=CODE_WIDGET_ATTRS),
        help_text="Only if two-factor authentication is on for your account: the 6-digit "
        "code from your app, or one of your recovery codes.",
    )

    def clean(self):
        cleaned_data = super().clean()
        user = self.get_user()
        if user is None or not two_factor.has_authenticator(user):
            return cleaned_data
        code = cleaned_data.get("otp_token", "")
        if not code:
            raise forms.ValidationError(
                "Enter the code from your authenticator app, or a recovery code.",
                code="otp_required",
            )
        device = two_factor.verify_code(user, code)
        if device is None:
            two_factor.report_failed_code(self.request, user.get_username())
            raise forms.ValidationError(
                "That code is wrong or expired. Enter the current code from your "
                "authenticator app, or an unused recovery code.",
                code="otp_invalid",
            )
        # django-otp marks the session verified when auth.login() sees this attribute.
        user.otp_device = device
        return cleaned_data


class CodeForm(forms.Form):
    code = forms.CharField(
        label="Code from your app",
        max_length=16,
        widget=forms.TextInput(attrs={**CODE_WIDGET_ATTRS, "inputmode": "numeric"}),
    )


@sensitive_post_parameters("code")
def enrolment(request, *, admin_site):
    """Two-factor authentication: add an authenticator app (QR code and key, confirmed with
    a code, then recovery codes shown once), or, once on, make new recovery codes."""
    user = request.user
    context = {
        **admin_site.each_context(request),
        "title": "Two-factor authentication",
        "required": settings.PORTAL_REQUIRE_2FA,
    }
    form = CodeForm(request.POST or None)

    if two_factor.has_second_factor(request):
        context["enrolled"] = True
        if request.method == "POST" and form.is_valid():
            code = form.cleaned_data["code"]
            if two_factor.verify_code(user, code, recovery_codes=False) is not None:
                context["recovery_codes"] = two_factor.replace_recovery_codes(user)
                return TemplateResponse(request, "admin/two_factor.html", context)
            form.add_error("code", "That code is wrong or expired.")
        context.update(form=form, codes_left=two_factor.recovery_codes_left(user))
        return TemplateResponse(request, "admin/two_factor.html", context)

    device = two_factor.pending_device(user)
    if request.method == "POST" and form.is_valid():
        codes = two_factor.confirm_enrolment(request, device, form.cleaned_data["code"])
        if codes is not None:
            messages.success(request, "Two-factor authentication is on for your account.")
            context.update(enrolled=True, recovery_codes=codes)
            return TemplateResponse(request, "admin/two_factor.html", context)
        form.add_error("code", "That code is wrong or expired. Enter the one your app shows now.")
    context.update(
        form=form,
        qr_code=two_factor.qr_code_svg(device),
        secret=two_factor.secret_of(device),
    )
    return TemplateResponse(request, "admin/two_factor.html", context)
