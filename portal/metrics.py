"""`/metrics`: the portal's figures in Prometheus' text format (`alerts.metrics`).

Off (404) unless `METRICS_TOKEN` is set; then a scrape must send `Authorization: Bearer
<METRICS_TOKEN>` (401 otherwise, compared in constant time), and at most
METRICS_THROTTLE_RATE requests per address (429), so the token cannot be guessed at speed.
GET only. The view opens no
session (it never reads `request.user`), is exempt from CSRF (it accepts no write), writes
nothing, and never logs the token or the header.
"""

from __future__ import annotations

import hmac
import math

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from alerts.metrics import registry

from .health import HealthRateThrottle


class MetricsRateThrottle(HealthRateThrottle):
    """Requests to /metrics per client address, whoever sends them."""

    scope = "metrics"

    def get_rate(self) -> str:
        return settings.METRICS_THROTTLE_RATE


def bearer_matches(request: HttpRequest, token: str) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given:
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


@never_cache
@csrf_exempt
def metrics(request: HttpRequest) -> HttpResponse:
    token = settings.METRICS_TOKEN
    if not token:
        raise Http404("metrics are off")
    if request.method != "GET":
        return HttpResponseNotAllowed(["GET"])
    throttle = MetricsRateThrottle()
    if not throttle.allow_request(request, None):
        response = HttpResponse("too many requests\n", status=429, content_type="text/plain")
        wait = throttle.wait()
        if wait is not None:
            response["Retry-After"] = str(max(math.ceil(wait), 1))
        return response
    if not bearer_matches(request, token):
        response = HttpResponse("unauthorized\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
