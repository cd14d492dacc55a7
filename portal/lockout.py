"""Lockout of repeated failed admin logins, through django-axes (settings: AXES_*).

A username is refused from an address after AXES_FAILURE_LIMIT failures there, for
AXES_COOLOFF_TIME or until a superuser deletes the access attempt in the admin.
"""

from __future__ import annotations

from datetime import timedelta

from axes.backends import AxesStandaloneBackend
from axes.helpers import get_cool_off
from django.conf import settings
from django.contrib import admin
from django.template.response import TemplateResponse

LOCKOUT_TEMPLATE = "admin/lockout.html"


class LockoutBackend(AxesStandaloneBackend):
    """django-axes' backend, for logins made through a request.

    Every login form passes its request; a call without one (the test client's `login()`,
    a shell) is no web login and has no address to count failures for, so it goes straight
    to the next backend instead of raising as django-axes does.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


def client_ip(request) -> str | None:
    """The client's address: REMOTE_ADDR, or behind TRUSTED_PROXY_COUNT proxies the entry
    of X-Forwarded-For the outermost proxy wrote (the entries left of it are the client's
    own, and forgeable)."""
    count = settings.TRUSTED_PROXY_COUNT
    if count > 0:
        hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        hops = [h for h in hops if h]
        if len(hops) >= count:
            return hops[-count]
    return request.META.get("REMOTE_ADDR")


def describe_cool_off(cool_off: timedelta | None) -> str:
    """'an hour', '30 minutes', '2 hours' for the lockout page."""
    if not cool_off:
        return ""
    minutes = max(1, round(cool_off.total_seconds() / 60))
    if minutes % 60 == 0:
        hours = minutes // 60
        return "an hour" if hours == 1 else f"{hours} hours"
    return "a minute" if minutes == 1 else f"{minutes} minutes"


def lockout_response(request, original_response=None, credentials=None):
    """The page a locked-out login gets (AXES_LOCKOUT_CALLABLE), with 429 Too Many Requests."""
    context = {
        **admin.site.each_context(request),
        "title": "Too many failed logins",
        "retry_in": describe_cool_off(get_cool_off(request)),
    }
    return TemplateResponse(
        request, LOCKOUT_TEMPLATE, context, status=settings.AXES_HTTP_RESPONSE_CODE
    ).render()
