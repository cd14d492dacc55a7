"""django-axes' and django-otp's admins, for superusers only."""

from __future__ import annotations

from django.contrib import admin


class SuperuserOnlyAdmin:
    """Mixin: login attempts and second-factor devices are for superusers alone, whatever
    model permissions a staff user holds (unlocking an account, resetting a lost phone)."""

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    def has_add_permission(self, request, obj=None):
        # Attempts are recorded by logins, devices enrolled by their user.
        return False


def restrict_security_admins(site: admin.AdminSite) -> None:
    """Re-register django-axes' and django-otp's admins as superuser-only.

    Called once every app's admin module has registered its models (PortalConfig.ready).
    """
    from axes.models import AccessAttempt, AccessFailureLog, AccessLog
    from django_otp.plugins.otp_static.models import StaticDevice
    from django_otp.plugins.otp_totp.models import TOTPDevice

    for model in (AccessAttempt, AccessLog, AccessFailureLog, TOTPDevice, StaticDevice):
        if not site.is_registered(model):
            continue
        model_admin = site.get_model_admin(model).__class__
        site.unregister(model)
        restricted = type(
            f"SuperuserOnly{model_admin.__name__}", (SuperuserOnlyAdmin, model_admin), {}
        )
        site.register(model, restricted)
