"""Schemathesis over /api/schema/: no 5xx of ours, and every response as the schema documents it.

Bounded for CI: a few derandomized examples per operation and generation mode, as a superuser
and as a viewer of tenant A, against two tenants mirrored from the Wix sandbox. Besides ids
drawn at random, every operation on an object is also called with real ids (tenant A's and
tenant B's), so actual rows meet the response schema. The actions that call Wix stay in:
the sandbox is served, so they run for real.
"""

from __future__ import annotations

import collections
from datetime import timedelta

import hypothesis
import pytest
import schemathesis
from django.conf import settings
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.utils import timezone
from hypothesis import HealthCheck, Phase, given
from hypothesis import strategies as st
from knox.settings import CONSTANTS
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS as REGISTERED_CHECKS
from schemathesis.checks import load_all_checks, not_a_server_error
from schemathesis.config._checks import PositiveDataAcceptanceConfig

from alerts.models import DeliveryAttempt, WebhookEndpoint
from connections.models import Connection, ConnectRequest, Job, Provider, RefreshRun, Schedule
from portal.api.throttling import TokenRateThrottle
from tenants.models import AuditEvent
from tenants.tests.builders import api_token

pytestmark = pytest.mark.django_db

# Every check runs on each example, several re-sending it (without credentials, with another
# method): with these counts the test stays under a minute on two cores.
EXAMPLES = {GenerationMode.POSITIVE: 12, GenerationMode.NEGATIVE: 6}
# Wix's answer to input we should have refused ourselves: a bug of ours, not Wix's refusal.
OUR_FAULT_WIX_CODES = {"INVALID_ARGUMENT"}


def not_a_server_error_of_ours(ctx, response, case):
    """5xx fail, except a 502 passing on Wix's refusal of a valid request (a wrong password,
    credentials a fuzzed update replaced), which is documented and carries Wix's code."""
    if response.status_code == 502:
        wix = (response.json().get("error") or {}).get("wix") or {}
        if wix.get("code") and wix["code"] not in OUR_FAULT_WIX_CODES:
            return None
    return not_a_server_error(ctx, response, case)


def all_checks() -> list:
    """Every check schemathesis has (its `--checks all`), ours standing in for its 5xx one."""
    load_all_checks()
    return [
        not_a_server_error_of_ours if check is not_a_server_error else check
        for check in REGISTERED_CHECKS.get_all()
    ]


CHECKS = all_checks()


@pytest.fixture
def app(monkeypatch):
    """portal.wsgi's app, built under the test's settings; no client hits a rate limit
    (the checks also call without credentials, which are limited per address)."""
    unlimited = {scope: "100000/min" for scope in settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]}
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", unlimited)
    monkeypatch.setattr(TokenRateThrottle, "THROTTLE_RATES", unlimited)
    return InTestTransaction(get_wsgi_application())


class InTestTransaction:
    """A WSGI app run as Django's test client runs one: Django closes the database connection
    when a request starts and ends, which would end the test's transaction (PostgreSQL)."""

    def __init__(self, app) -> None:
        self.app = app

    def __call__(self, environ, start_response):
        request_started.disconnect(close_old_connections)
        request_finished.disconnect(close_old_connections)
        try:
            response = self.app(environ, start_response)
            body = b"".join(response)
            response.close()  # sends request_finished
        finally:
            request_started.connect(close_old_connections)
            request_finished.connect(close_old_connections)
        return [body]


def real_ids(world) -> dict[str, list]:
    """For each collection, the id of one of tenant A's objects and one of tenant B's."""
    models = {
        "connections": Connection,
        "connect-requests": ConnectRequest,
        "refresh-runs": RefreshRun,
        "audit-events": AuditEvent,
        "jobs": Job,
    }
    ids = {"tenants": [world.tenant_a.pk, world.tenant_b.pk]}
    for collection, model in models.items():
        ids[collection] = [
            str(model.objects.filter(tenant=t).values_list("pk", flat=True).first())
            for t in (world.tenant_a, world.tenant_b)
        ]
    # Webhook endpoints are per user, as tokens: the superuser's and the viewer's own (each
    # role reaches its own, the superuser both), and spares for DELETE to remove. Ids far
    # beyond the ones drawn at random, so no random DELETE takes the real ones away.
    for key, first_pk in (("webhook-endpoints", 7_000_001), ("webhook-endpoints-spare", 7_000_003)):
        ids[key] = [
            str(WebhookEndpoint.objects.create(pk=first_pk + i, owner=user, url=HOOK_URL).pk)
            for i, user in enumerate((world.superuser, world.viewer))
        ]
    for pk in ids["webhook-endpoints"]:
        # A failed delivery with its attempt, for the deliveries' schema to meet.
        delivery = WebhookEndpoint.objects.get(pk=pk).deliveries.create(
            msg_id=f"msg_{pk}", event_type="webhook.test", body="{}", state="failed"
        )
        DeliveryAttempt.objects.create(
            delivery=delivery, number=1, started_at=timezone.now(), status_code=500
        )
    return ids


HOOK_URL = "https://93.184.215.14/hook"


def strategies(operation, mode, world, ids, spare_token_key):
    """Random cases, plus (for valid data) cases on real objects of both tenants."""
    yield operation.as_strategy(generation_mode=mode)
    if mode is not GenerationMode.POSITIVE:
        return
    collection = operation.path.split("/")[3]
    if "{token_key}" in operation.path:
        # A token of the caller's besides the one authenticating the run, to revoke.
        yield operation.as_strategy(
            generation_mode=mode, path_parameters={"token_key": spare_token_key}
        )
    elif "{id}" in operation.path:
        if collection == "webhook-endpoints" and operation.method.upper() == "DELETE":
            collection = "webhook-endpoints-spare"
        for pk in ids[collection]:
            yield operation.as_strategy(generation_mode=mode, path_parameters={"id": pk})
    elif any(p.name == "tenant" for p in operation.query):
        for tenant in (world.tenant_a, world.tenant_b):
            yield operation.as_strategy(generation_mode=mode, query={"tenant": tenant.pk})
    elif collection == "connect":
        calendar_type = "GOOGLE" if operation.path.endswith("/oauth/") else "I_CAL"
        real = {
            "tenant": world.tenant_a.pk,
            "schedule": Schedule.objects.filter(tenant=world.tenant_a).first().pk,
            "provider": Provider.objects.get(tenant=world.tenant_a, calendar_type=calendar_type).pk,
        }
        yield operation.as_strategy(generation_mode=mode).map(lambda case: with_body(case, real))
    if operation.path.endswith("/events/"):
        window = {"start": "2026-12-01T00:00:00Z", "end": "2026-12-08T00:00:00Z"}
        for pk in ids["tenants"]:
            yield operation.as_strategy(
                generation_mode=mode, path_parameters={"id": pk}, query=window
            )


def with_body(case, values: dict):
    if isinstance(case.body, dict):
        case.body.update(values)
    return case


@pytest.mark.parametrize("role", ["superuser", "viewer"])
def test_api_conforms_to_its_schema(app, busy_world, role):
    user = getattr(busy_world, role)
    headers = {"Authorization": f"Token {api_token(user)}"}
    spare_token_key = api_token(user)[: CONSTANTS.TOKEN_KEY_LENGTH]
    schema = schemathesis.openapi.from_wsgi("/api/schema/", app)
    # Valid by the schema is not always valid: an id in a filter that names no tenant of the
    # user, a provider that cannot connect that way, an end before the start. Those are 400s
    # with field errors, which OpenAPI cannot foresee.
    schema.config.checks.positive_data_acceptance = PositiveDataAcceptanceConfig(
        expected_statuses=["2xx", "400", "401", "403", "404", "409", "429", "5xx"]
    )
    # Unknown query parameters are ignored, as most HTTP APIs do, not refused.
    schema.config.generation.allow_extra_parameters = False
    ids = real_ids(busy_world)
    failures, statuses = [], collections.defaultdict(collections.Counter)
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode, examples in EXAMPLES.items():
            strategy = st.one_of(*strategies(operation, mode, busy_world, ids, spare_token_key))
            if mode is GenerationMode.NEGATIVE and not can_be_invalid(operation):
                continue
            try:
                run(strategy, examples, headers, statuses[operation.label])
            # Gathered, to report every operation at once; schemathesis raises its failures
            # as a BaseExceptionGroup, which `except Exception` lets through.
            except (Exception, BaseExceptionGroup) as exc:
                failures.append(f"{operation.label} ({mode.value}):\n{exc}")
    assert not failures, "\n\n".join(failures)
    # The real ids reached real rows: every operation on an object answered something but 404.
    for label, seen in statuses.items():
        assert set(seen) - {404}, f"{label} only ever answered 404: {dict(seen)}"


def run(strategy, examples: int, headers: dict[str, str], statuses: collections.Counter) -> None:
    @hypothesis.settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=timedelta(seconds=5),
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )
    @given(case=strategy)
    def check(case):
        response = case.call_and_validate(headers=headers, checks=CHECKS)
        statuses[response.status_code] += 1

    check()


def can_be_invalid(operation) -> bool:
    """Whether negative mode has something to break: a query, a body, or a path parameter
    other than a plain string (any text is one)."""
    typed_path = any(
        (p.definition.get("schema") or {}) != {"type": "string"} for p in operation.path_parameters
    )
    return bool(list(operation.query)) or bool(list(operation.body)) or typed_path


def test_client_sees_the_same_schema():
    """The test above fuzzes the schema the API serves, with the error shape documented."""
    schema = APIClient().get("/api/schema/", HTTP_ACCEPT="application/json").json()

    assert "Error" in schema["components"]["schemas"]
    responses = schema["paths"]["/api/v1/connections/{id}/disconnect/"]["post"]["responses"]
    assert set(responses) == {"200", "401", "403", "404", "429", "502", "503"}
