"""A second factor for staff: a TOTP app, with recovery codes (django-otp).

Staff enrol from the admin ("Two-factor authentication"); from then on the admin login asks
for a code. With PORTAL_REQUIRE_2FA, staff without a device reach only the enrolment page.
Keys and recovery codes are shown once on that page and never logged.
"""

from __future__ import annotations

from base64 import b32encode

import segno
from django.conf import settings
from django.contrib.auth import logout
from django.contrib.auth.signals import user_login_failed
from django.contrib.auth.views import redirect_to_login
from django.db import transaction
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe
from django_otp import login as otp_login
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

RECOVERY_CODE_COUNT = 10
TOTP_DEVICE_NAME = "Authenticator app"
RECOVERY_DEVICE_NAME = "Recovery codes"
# Cached per request: the middleware and the admin site both ask.
_HAS_DEVICE = "_portal_has_second_factor"


def has_authenticator(user) -> bool:
    """Whether `user` has a confirmed authenticator app."""
    return user.is_authenticated and TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def has_second_factor(request) -> bool:
    """Whether the request's user has a confirmed authenticator app (asked once a request)."""
    if not hasattr(request, _HAS_DEVICE):
        setattr(request, _HAS_DEVICE, has_authenticator(request.user))
    return getattr(request, _HAS_DEVICE)


def session_is_verified(request) -> bool:
    """A session passes unless its user has a second factor the login did not check."""
    user = request.user
    # is_verified comes from django-otp's middleware; a request built without it (a
    # RequestFactory in tests) has passed no second factor.
    verified = getattr(user, "is_verified", lambda: False)()
    return not user.is_authenticated or verified or not has_second_factor(request)


def pending_device(user) -> TOTPDevice:
    """The user's unconfirmed authenticator, created on first call: reloading the enrolment
    page shows the same key, so a scanned code keeps working until it is confirmed."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("pk").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=TOTP_DEVICE_NAME, confirmed=False)
    return device


def secret_of(device: TOTPDevice) -> str:
    """The key as authenticator apps take it typed in: base32, in groups of four."""
    key = b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(key[i : i + 4] for i in range(0, len(key), 4))


def qr_code_svg(device: TOTPDevice) -> SafeString:
    """The device's otpauth:// URL as an inline SVG QR code (no image request, no script)."""
    svg = segno.make(device.config_url, error="m").svg_inline(scale=5, border=2)
    return mark_safe(svg)  # noqa: S308  (segno's own markup; the URL is escaped by it)


@transaction.atomic
def confirm_enrolment(request, device: TOTPDevice, code: str) -> list[str] | None:
    """Confirm `device` with a code from the app and return fresh recovery codes, or None if
    the code is wrong. The session counts as verified from then on."""
    if not device.verify_token(code.replace(" ", "")):
        return None
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    # Other unconfirmed keys were shown but never confirmed: they must never start working.
    TOTPDevice.objects.filter(user=device.user, confirmed=False).delete()
    otp_login(request, device)
    setattr(request, _HAS_DEVICE, True)
    return replace_recovery_codes(device.user)


@transaction.atomic
def replace_recovery_codes(user) -> list[str]:
    """Replace the user's recovery codes with RECOVERY_CODE_COUNT new ones and return them."""
    device, _ = StaticDevice.objects.get_or_create(
        user=user, name=RECOVERY_DEVICE_NAME, defaults={"confirmed": True}
    )
    device.token_set.all().delete()
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODE_COUNT)]
    StaticToken.objects.bulk_create(StaticToken(device=device, token=c) for c in codes)
    return codes


def recovery_codes_left(user) -> int:
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()


def verify_code(user, code: str, *, recovery_codes: bool = True):
    """The device that accepts `code`, or None: six digits go to the authenticator app,
    anything else is a recovery code (used up by a successful check), if `recovery_codes`.

    Only one kind of device is tried, so a typo in an app code never throttles the
    recovery codes.
    """
    code = code.replace(" ", "").replace("-", "").lower()
    # Recovery codes are 8 letters and digits, app codes 6 digits.
    if code.isdigit() and len(code) == 6:
        model = TOTPDevice
    elif recovery_codes:
        model = StaticDevice
    else:
        return None
    with transaction.atomic():
        for device in model.objects.select_for_update().filter(user=user, confirmed=True):
            # verify_token refuses while the device is throttled after failures.
            if device.verify_token(code):
                return device
    return None


def report_failed_code(request, username: str) -> None:
    """Count a wrong second factor as a failed login, so the lockout bounds code guessing."""
    user_login_failed.send(sender=__name__, credentials={"username": username}, request=request)


def _exempt_paths() -> tuple[str, ...]:
    return (
        reverse("admin:login"),
        reverse("admin:logout"),
        reverse("admin:two_factor"),
        reverse("admin:jsi18n"),
        settings.STATIC_URL if settings.STATIC_URL.startswith("/") else f"/{settings.STATIC_URL}",
    )


class TwoFactorMiddleware:
    """Keep staff sessions to what their second factor allows.

    - A session of a user with an authenticator app that did not pass it (a login from
      before the app was added) is logged out and sent to the login page.
    - With PORTAL_REQUIRE_2FA, staff without an app are sent to the enrolment page from
      every page but the login, logout and enrolment pages.

    Token-authenticated API calls carry no session user and pass untouched.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = request.user
        if (
            user.is_authenticated
            and user.is_staff
            and not user.is_verified()
            and not request.path_info.startswith(_exempt_paths())
        ):
            if has_second_factor(request):
                next_url = request.get_full_path()
                logout(request)
                return redirect_to_login(next_url, reverse("admin:login"))
            if settings.PORTAL_REQUIRE_2FA:
                return redirect("admin:two_factor")
        return self.get_response(request)
