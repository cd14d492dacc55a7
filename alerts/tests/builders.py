"""Making endpoints and sending test events through the services, as the admin does."""

from __future__ import annotations

from alerts.models import Delivery, WebhookEndpoint
from alerts.services import endpoints
from tenants.models import Via


def make_endpoint(owner, url: str, **fields) -> tuple[WebhookEndpoint, str]:
    return endpoints.endpoint_create(owner=owner, url=url, user=owner, via=Via.ADMIN, **fields)


def send_test(endpoint: WebhookEndpoint, capture) -> Delivery:
    """Send a test event; its first attempt runs on commit, in process (no broker)."""
    with capture(execute=True):
        delivery = endpoints.endpoint_send_test(endpoint, user=endpoint.owner, via=Via.ADMIN)
    delivery.refresh_from_db()
    return delivery


def attempts_of(delivery: Delivery) -> list[tuple]:
    return list(
        delivery.attempt_log.order_by("number").values_list("number", "status_code", "error")
    )
