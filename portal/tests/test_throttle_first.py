"""Every API request counts against a rate, once, also when it is refused with 401 or 403.

DRF authenticates, then checks permissions, then throttles: on its own it never counts a
request without a token, with a bad one, or from a user without tenants.
"""

from __future__ import annotations

import pytest
from django.conf import settings
from knox.auth import TokenAuthentication as KnoxTokenAuthentication
from rest_framework.response import Response
from rest_framework.test import APIClient, APIRequestFactory
from rest_framework.views import APIView

from portal.api.permissions import HasTenantAccess
from portal.api.throttling import (
    AnonRateThrottle,
    CountsRefusedCredentials,
    ThrottledFirst,
    TokenRateThrottle,
)
from tenants.tests.builders import api_client_for, api_token, staff_user
from tenants.tests.factories import TenantFactory

pytestmark = pytest.mark.django_db

BAD_TOKEN = "Token " + "0" * 64


@pytest.fixture
def rates(monkeypatch):
    """Set the token and anonymous rates (DRF reads them into the classes at import)."""

    def set_rates(*, api_rate: str = "600/min", per_address: str = "60/min") -> None:
        monkeypatch.setattr(TokenRateThrottle, "THROTTLE_RATES", {"token": api_rate})
        monkeypatch.setattr(AnonRateThrottle, "THROTTLE_RATES", {"anon": per_address})

    return set_rates


@pytest.fixture
def member():
    """viv, a viewer of one tenant."""
    return staff_user("viv", viewer_of=(TenantFactory(),))


def statuses(send, times: int) -> list[int]:
    return [send().status_code for _ in range(times)]


def test_requests_without_a_token_are_throttled_at_the_anonymous_rate():
    limit = int(settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["anon"].split("/")[0])
    client = APIClient()

    answers = statuses(lambda: client.get("/api/v1/tenants/"), limit + 1)
    refused = client.get("/api/v1/connections/")

    assert answers[:limit] == [401] * limit
    assert answers[limit] == 429
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "throttled"
    assert 0 < int(refused["Retry-After"]) <= 60


def test_a_user_without_tenants_is_throttled(rates):
    rates(api_rate="5/min")
    client = api_client_for(staff_user("nobody"))

    answers = statuses(lambda: client.get("/api/v1/connections/"), 6)

    assert answers == [403] * 5 + [429]


def test_a_refused_request_counts_once(rates):
    """The throttles run before the permissions and again after them: one count."""
    rates(per_address="3/min")
    client = APIClient()

    assert statuses(lambda: client.get("/api/v1/tenants/"), 4) == [401, 401, 401, 429]


def test_bad_tokens_are_throttled():
    """Guessing tokens meets a 429 within the anonymous rate (needs the token authentication
    class to include CountsRefusedCredentials, in DEFAULT_AUTHENTICATION_CLASSES)."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=BAD_TOKEN)

    answers = statuses(lambda: client.get("/api/v1/tenants/"), 100)

    assert answers[0] == 401
    assert 429 in answers
    first = answers.index(429)
    assert set(answers[:first]) == {401}
    assert set(answers[first:]) == {429}


def test_the_anonymous_budget_does_not_touch_valid_tokens(rates, member):
    rates(per_address="2/min")
    anonymous = APIClient()
    statuses(lambda: anonymous.get("/api/v1/tenants/"), 3)

    assert api_client_for(member).get("/api/v1/tenants/").status_code == 200
    assert anonymous.get("/api/v1/tenants/").status_code == 429


def test_a_forged_forwarded_for_does_not_escape_the_anonymous_rate(rates):
    rates(per_address="2/min")
    client = APIClient()

    answers = [
        client.get("/api/v1/tenants/", HTTP_X_FORWARDED_FOR=f"203.0.113.{n}").status_code
        for n in range(3)
    ]

    assert answers == [401, 401, 429]


# --- The authentication mixin, on a view of its own ------------------------------------------


class CountingTokenAuthentication(CountsRefusedCredentials, KnoxTokenAuthentication):
    pass


class Probe(APIView):
    authentication_classes = [CountingTokenAuthentication]
    permission_classes = [ThrottledFirst, HasTenantAccess]
    throttle_classes = [TokenRateThrottle, AnonRateThrottle]

    def get(self, request):
        return Response({"ok": True})


def probe(authorization: str | None = None, **extra):
    factory = APIRequestFactory()
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization else {}
    return Probe.as_view()(factory.get("/probe/", **headers, **extra))


def test_refused_credentials_count_against_the_address(rates, member):
    rates(per_address="3/min", api_rate="3/min")
    token = api_token(member)

    bad = [probe(BAD_TOKEN).status_code for _ in range(4)]
    good = [probe(f"Token {token}").status_code for _ in range(4)]
    elsewhere = probe(BAD_TOKEN, REMOTE_ADDR="198.51.100.7")

    assert bad == [401, 401, 401, 429]
    # A valid token has its own budget, counted once per request.
    assert good == [200, 200, 200, 429]
    assert elsewhere.status_code == 401


def test_a_throttled_bad_token_gets_429_in_the_error_shape(rates):
    rates(per_address="1/min")
    probe(BAD_TOKEN)

    refused = probe(BAD_TOKEN)
    refused.render()

    assert refused.status_code == 429
    assert refused.data["error"]["code"] == "throttled"
    assert 0 < int(refused["Retry-After"]) <= 60
