"""`/healthz`: whether the mirror is still being refreshed, for an uptime monitor.

If beat or the workers die, nothing inside the portal can say so: the pages keep showing the
last mirror. The age of the last completed refresh pass (`connections.selectors
.last_completed_pass`) can: a pass completes only when every tenant it queued was refreshed,
so it grows old when beat stops, the workers stop, or their messages are lost.

The answer names no tenant and no count. The view reads one row, writes nothing, opens no
session and needs no login; it is throttled per client address like the API's anonymous
requests (HEALTH_THROTTLE_RATE).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.utils.timesince import timesince
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from connections.selectors import last_completed_pass

from .api.throttling import PortalRateThrottle

# The last completed pass may be this many refresh intervals old before the portal is stale.
STALE_AFTER_INTERVALS = 3


class Status(StrEnum):
    OK = "ok"
    STALE = "stale"
    NEVER = "never"


@dataclass(frozen=True)
class Health:
    status: Status
    # Since the last completed pass closed; None when none ever completed.
    last_pass_age: timedelta | None
    stale_after: timedelta

    @property
    def ok(self) -> bool:
        return self.status == Status.OK

    @property
    def last_pass_age_seconds(self) -> int | None:
        if self.last_pass_age is None:
            return None
        return int(self.last_pass_age.total_seconds())

    def as_json(self) -> dict[str, str | int | None]:
        return {"status": self.status, "last_pass_age_seconds": self.last_pass_age_seconds}

    def line(self) -> str:
        """The status in one line of plain text, for people and cron."""
        if self.last_pass_age is None:
            return f"{self.status}: no refresh pass has completed yet"
        line = (
            f"{self.status}: the last refresh pass completed {ago(self.last_pass_age)} "
            f"({self.last_pass_age_seconds} s)"
        )
        if not self.ok:
            line += f"; stale after {timesince_words(self.stale_after)}"
        # timesince() joins a number to its unit with a no-break space, for HTML.
        return line.replace("\xa0", " ")


def stale_after() -> timedelta:
    """How old the last completed pass may be before the portal is stale."""
    return timedelta(minutes=STALE_AFTER_INTERVALS * settings.REFRESH_INTERVAL_MINUTES)


def check(*, now: datetime | None = None) -> Health:
    """Return the portal's health from the last completed refresh pass (one query)."""
    now = now or timezone.now()
    limit = stale_after()
    last = last_completed_pass()
    if last is None:
        return Health(status=Status.NEVER, last_pass_age=None, stale_after=limit)
    age = max(now - last.closed_at, timedelta(0))
    status = Status.STALE if age > limit else Status.OK
    return Health(status=status, last_pass_age=age, stale_after=limit)


def ago(age: timedelta) -> str:
    """`age` in words, as the dashboard says it: "just now", "4 minutes ago"."""
    if age < timedelta(minutes=1):
        return "just now"
    return f"{timesince_words(age)} ago"


def timesince_words(age: timedelta) -> str:
    # timesince() measures between two datetimes; any fixed one will do.
    origin = datetime(2000, 1, 1, tzinfo=UTC)
    return timesince(origin, origin + age)


class HealthRateThrottle(PortalRateThrottle):
    """Requests to /healthz per client address (REMOTE_ADDR, or behind TRUSTED_PROXY_COUNT
    proxies the address they add to X-Forwarded-For), whoever is logged in."""

    scope = "health"

    def get_rate(self) -> str:
        return settings.HEALTH_THROTTLE_RATE

    def get_cache_key(self, request, view) -> str:
        # Never request.user: reading it would open the session.
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    """200 {"status": "ok", "last_pass_age_seconds": N}; 503 with "stale" or "never"; 429
    past the address's rate."""
    throttle = HealthRateThrottle()
    if not throttle.allow_request(request, None):
        response = JsonResponse({"status": "throttled"}, status=429)
        wait = throttle.wait()
        if wait is not None:
            response["Retry-After"] = str(max(math.ceil(wait), 1))
        return response
    health = check()
    return JsonResponse(health.as_json(), status=200 if health.ok else 503)
