"""Request rates: per token for authenticated requests, per address for the others.

DRF checks permissions before throttles, and authentication before both, so on its own a
request refused with 401 (no or a bad token) or 403 (a user without tenants) never counts.
Here every request counts, once:

- `ThrottledFirst`, first of the default permission classes, runs the view's throttles
  before any permission can refuse the request;
- `CountsRefusedCredentials`, a mixin for authentication classes, counts a request whose
  credentials were refused against its address's "anon" budget before the 401 goes out;
- each throttle counts a request at most once however often it is asked (`_counted`), so
  DRF's own check after the permissions adds nothing.

The throttles live in the cache and fail open: while it is unreachable every request goes
through, with a warning at most once a minute.
"""

from __future__ import annotations

import logging

from rest_framework.exceptions import AuthenticationFailed, Throttled
from rest_framework.permissions import BasePermission
from rest_framework.throttling import SimpleRateThrottle

from tenants.ratelimit import CacheUnavailable, OutageWarning, reaching_cache

logger = logging.getLogger(__name__)

throttle_unavailable = OutageWarning(
    logger, "API throttles unavailable, the cache is unreachable; not limiting"
)


class PortalRateThrottle(SimpleRateThrottle):
    """A rate kept in the cache that counts a request once and lets it through when the
    cache is down."""

    def allow_request(self, request, view) -> bool:
        counted = _counted(request)
        if self.scope in counted:
            return True
        try:
            with reaching_cache():
                allowed = super().allow_request(request, view)
        except CacheUnavailable as exc:
            throttle_unavailable(exc)
            return True
        if allowed:
            counted.add(self.scope)
        return allowed


class TokenRateThrottle(PortalRateThrottle):
    """Requests per API token (per session user in the browsable API); anonymous requests
    are `AnonRateThrottle`'s."""

    scope = "token"

    def get_cache_key(self, request, view):
        token = getattr(request, "auth", None)
        if token is not None and getattr(token, "token_key", None):
            ident = f"token:{token.token_key}"
        elif request.user and request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            return None
        return self.cache_format % {"scope": self.scope, "ident": ident}


class AnonRateThrottle(PortalRateThrottle):
    """Requests per client address without valid credentials: none, or refused ones.

    The address is REMOTE_ADDR, or behind NUM_PROXIES proxies the one they add to
    X-Forwarded-For (a client can forge the rest of that header)."""

    scope = "anon"

    def get_cache_key(self, request, view):
        if request.user and request.user.is_authenticated:
            return None
        return self.address_key(request)

    def address_key(self, request) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class RefusedCredentialsThrottle(AnonRateThrottle):
    """The "anon" budget, counted while authentication refuses credentials: the request
    has no user yet (asking for it would authenticate again)."""

    def get_cache_key(self, request, view):
        return self.address_key(request)


class ThrottledFirst(BasePermission):
    """Runs the view's throttles before the permission classes after it can refuse.

    First in DEFAULT_PERMISSION_CLASSES. A view that names its own `permission_classes`
    should list it first too.
    """

    def has_permission(self, request, view) -> bool:
        view.check_throttles(request)
        return True


class CountsRefusedCredentials:
    """For authentication classes: refused credentials count against the address's "anon"
    budget, and past it the answer is 429 rather than 401, so guessing tokens is throttled.

    Put it first among the bases: `class TokenAuthentication(CountsRefusedCredentials,
    knox.auth.TokenAuthentication)`.
    """

    def authenticate(self, request):
        try:
            return super().authenticate(request)
        except AuthenticationFailed:
            throttle = RefusedCredentialsThrottle()
            if not throttle.allow_request(request, None):
                raise Throttled(wait=throttle.wait()) from None
            raise


def _counted(request) -> set[str]:
    """The throttle scopes this request was already counted in."""
    # On DRF's Request itself: the authentication classes, the permissions and the view see
    # that one object for the whole request.
    return vars(request).setdefault("_throttle_scopes_counted", set())
