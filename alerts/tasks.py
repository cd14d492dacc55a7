"""Webhook sending in the background: take delivery ids, call `services.deliveries`, report.

Arguments are delivery ids only, never a secret or a body: task arguments are stored with
their results (django-celery-results) and shown in the admin. Without a broker, `deliver`
runs in process as soon as its transaction commits (the first attempt at once); retries
always wait for `send_due`, which beat runs every WEBHOOK_SWEEP_SECONDS.
"""

from __future__ import annotations

from celery import shared_task

from .services import deliveries


@shared_task(acks_late=True)
def deliver(delivery_ids: list[int]) -> int:
    """Make the due attempt of these deliveries now; return how many were sent."""
    return deliveries.send_due(ids=delivery_ids)


@shared_task
def send_due() -> int:
    """Send every due delivery (retries, and first attempts no worker made); return how many."""
    return deliveries.send_due()
