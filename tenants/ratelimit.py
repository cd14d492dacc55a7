"""A per-site budget of Wix requests, shared by every worker through the Django cache.

Wix allows 200 requests per minute per app instance (site). The budget keeps the portal
below that however many workers call one site: a fixed-window counter in the cache
(Redis in production), one `incr` per request (and an `add` for a window's first). A
request that does not fit waits for the next window; one that would wait longer than
`max_wait_seconds` fails with `BudgetExhausted`, a `WixRateLimited`, so a refresh records
it and is retried. The budget fails open: while the cache is unreachable, requests go
through unlimited, with a warning at most once a minute.

Every limit kept in the cache (this budget, the API throttle, the refresh lock) learns that
the cache is down from `reaching_cache()` and logs it with an `OutageWarning`.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from redis.exceptions import RedisError

from wixapi.errors import WixRateLimited

logger = logging.getLogger(__name__)

# What Django's cache backends let through when the cache server is down: RedisCache raises
# redis-py's ConnectionError or TimeoutError (RedisErrors), sockets raise OSError.
CACHE_ERRORS: tuple[type[Exception], ...] = (RedisError, OSError)
OUTAGE_WARNING_INTERVAL_SECONDS = 60.0


class CacheUnavailable(Exception):
    """The cache server could not be reached."""


@contextmanager
def reaching_cache() -> Iterator[None]:
    """Run the block's cache calls; raise `CacheUnavailable` if the cache server is down."""
    try:
        yield
    except CACHE_ERRORS as exc:
        raise CacheUnavailable(f"{type(exc).__name__}: {exc}") from exc


class OutageWarning:
    """A warning logged at most once per `interval` seconds in this process.

    An outage fails every request that needs the cache; one line a minute, with how many
    were held back, says so without flooding the log.
    """

    def __init__(
        self,
        log: logging.Logger,
        message: str,
        *,
        interval: float = OUTAGE_WARNING_INTERVAL_SECONDS,
    ) -> None:
        self.log = log
        self.message = message
        self.interval = interval
        self._lock = threading.Lock()
        self._next_at = 0.0
        self._held_back = 0

    def __call__(self, error: object) -> None:
        """Log the warning with `error` unless one was logged less than `interval` s ago."""
        with self._lock:
            now = time.monotonic()
            if now < self._next_at:
                self._held_back += 1
                return
            held_back, self._held_back = self._held_back, 0
            self._next_at = now + self.interval
        self.log.warning(
            "%s (%s); %d more since the last warning, next at most in %g s",
            self.message,
            error,
            held_back,
            self.interval,
        )

    def reset(self) -> None:
        """Forget the last warning: the next one is logged (tests)."""
        with self._lock:
            self._next_at = 0.0
            self._held_back = 0


budget_unavailable = OutageWarning(
    logger, "Wix request budgets unavailable, the cache is unreachable; not limiting"
)

# The minute is cut into this many windows, so a burst at a window boundary overshoots the
# per-minute figure by one window's share at most (180/minute: 195 in any 60 s, < 200).
WINDOWS_PER_MINUTE = 12
MAX_WAIT_SECONDS = 30.0


class BudgetExhausted(WixRateLimited):
    """The site's request budget stayed spent longer than the wait allowed; nothing was sent."""

    default_code = "REQUEST_BUDGET_EXHAUSTED"


@dataclass(frozen=True)
class SiteBudget:
    """At most `limit` requests to one site per `window_seconds`, across processes.

    Call it (or `acquire()`) before each request. Equal budgets share their count: two
    clients, threads or workers with a budget for the same site draw on one counter.
    """

    site_id: str
    limit: int
    window_seconds: float
    max_wait_seconds: float = MAX_WAIT_SECONDS

    def acquire(self) -> None:
        """Return once one more request fits; raise `BudgetExhausted` if it won't in time."""
        deadline = time.monotonic() + self.max_wait_seconds
        while True:
            now = time.time()
            window = math.floor(now / self.window_seconds)
            if self._take(window) <= self.limit:
                return
            # Waiters wake spread over a little of the next window, not all at its first instant.
            wait = (window + 1) * self.window_seconds - now
            wait += random.uniform(0, self.window_seconds / 20)
            if time.monotonic() + wait > deadline:
                raise BudgetExhausted(
                    f"The request budget of site {self.site_id} ({self.limit} per "
                    f"{self.window_seconds:g} s) stayed spent for {self.max_wait_seconds:g} s"
                )
            time.sleep(wait)

    __call__ = acquire

    def _take(self, window: int) -> int:
        """Count one request in the window and return the window's count so far."""
        key = f"wix-site-budget:{self.site_id}:{self.window_seconds:g}:{window}"
        try:
            with reaching_cache():
                try:
                    # Most requests find their window's key: one `incr`. The key outlives its
                    # window, so an `incr` never meets an expired one.
                    return cache.incr(key)
                except ValueError:
                    pass
                # The window's first request creates the key (unless another worker just did).
                if cache.add(key, 1, timeout=math.ceil(self.window_seconds * 2) + 1):
                    return 1
                try:
                    return cache.incr(key)
                except ValueError:
                    return 1  # it expired between `add` and `incr`: a stall of two windows
        except CacheUnavailable as exc:
            # The budget is a courtesy to Wix (whose 429s are retried anyway): a cache outage
            # must not fail every refresh.
            budget_unavailable(exc)
            return 1


def budget_for(site_id: str) -> SiteBudget | None:
    """Return the site's budget per WIX_SITE_REQUESTS_PER_MINUTE; None when that is 0 or less."""
    per_minute = settings.WIX_SITE_REQUESTS_PER_MINUTE
    if per_minute <= 0:
        return None
    limit = math.ceil(per_minute / WINDOWS_PER_MINUTE)
    # Lengthen the window to keep the rate exact when per_minute isn't a multiple of 12.
    return SiteBudget(site_id=site_id, limit=limit, window_seconds=60 * limit / per_minute)
