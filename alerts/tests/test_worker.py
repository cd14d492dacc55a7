"""A delivery survives its worker being killed mid-send, and two senders never send one
attempt twice: real `celery worker` processes on a Redis of the test's own, the test's
PostgreSQL database, and the verifying receiver.

The killed worker's lease expires (WEBHOOK_LEASE_SECONDS, short here); the sweep then sends
the delivery as its next attempt, with the same webhook-id. The message the dead worker never
acknowledged comes back to a second worker after the visibility timeout, which finds nothing
due: the attempt is not sent a third time.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections import Counter
from collections.abc import Callable

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone
from django_celery_results.models import TaskResult

from alerts import tasks
from alerts.models import Delivery
from alerts.services import deliveries, endpoints
from alerts.tests.builders import attempts_of, make_endpoint
from tenants.models import Via
from tenants.tests.builders import wait_until

pytestmark = [
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
        reason="needs PostgreSQL (DATABASE_URL=postgres://...): worker processes and "
        "threads share the test database",
    ),
]

LEASE_SECONDS = 2
TIMEOUT = 30
QUEUE = "webhook-worker-lost"


@pytest.fixture
def start_worker(worker_processes) -> Callable[[], subprocess.Popen]:
    """Start a `celery worker` on QUEUE, allowed to deliver to the receiver on 127.0.0.1."""
    environment = {
        "WEBHOOK_ALLOW_HOSTS": "127.0.0.1",
        "WEBHOOK_TIMEOUT_SECONDS": "10",
        "WEBHOOK_LEASE_SECONDS": str(LEASE_SECONDS),
    }
    return lambda: worker_processes(QUEUE, env=environment, loglevel="INFO")


def test_a_delivery_whose_worker_was_killed_mid_send_is_sent_once_more(
    redis_server, start_worker, staff, webhook_receiver, settings
):
    settings.WEBHOOK_LEASE_SECONDS = LEASE_SECONDS
    endpoint, secret = make_endpoint(staff, webhook_receiver.url)
    webhook_receiver.secrets = [secret]
    delivery = endpoints.endpoint_send_test(endpoint, user=staff, via=Via.API)
    # The worker is inside the attempt while the receiver sits on it.
    webhook_receiver.stall(5.0)
    # The project's Celery app, reached through the task (portal sits above alerts).
    with tasks.deliver.app.connection_for_write(f"redis://127.0.0.1:{redis_server.port}/0") as conn:
        sent = tasks.deliver.apply_async(([delivery.pk],), connection=conn, queue=QUEUE)

    first = start_worker()
    wait_until(lambda: len(webhook_receiver.received) == 1)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(10)

    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts, attempts_of(delivery)) == ("pending", 1, [])
    assert delivery.lease_token
    # Leased: a sweep now sends nothing; once the lease has run out, it sends attempt 2.
    assert deliveries.send_due() == 0
    wait_until(lambda: timezone.now() > delivery.leased_until)
    assert deliveries.send_due() == 1
    delivery.refresh_from_db()
    assert (delivery.state, attempts_of(delivery)) == ("succeeded", [(2, 200, "")])

    # The dead worker's message returns to another worker, which finds nothing due.
    start_worker()
    wait_until(lambda: TaskResult.objects.filter(task_id=sent.id, status="SUCCESS").exists())
    assert TaskResult.objects.get(task_id=sent.id).result == "0"
    assert [r.msg_id for r in webhook_receiver.received] == [delivery.msg_id] * 2


def test_two_sweeps_at_once_send_each_delivery_once(staff, webhook_receiver, settings):
    settings.WEBHOOK_SENDER_THREADS = 2
    endpoint, secret = make_endpoint(staff, webhook_receiver.url)
    webhook_receiver.secrets = [secret]
    made = [endpoints.endpoint_send_test(endpoint, user=staff, via=Via.API) for _ in range(30)]
    barrier = threading.Barrier(2)
    sent: list[int] = []
    errors: list[BaseException] = []

    def sweep() -> None:
        try:
            barrier.wait(timeout=TIMEOUT)
            sent.append(deliveries.send_due())
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)

    assert not errors, errors
    assert sum(sent) == 30
    assert Counter(r.msg_id for r in webhook_receiver.received) == Counter(d.msg_id for d in made)
    assert set(Counter(r.msg_id for r in webhook_receiver.received).values()) == {1}
    assert set(Delivery.objects.values_list("state", "attempts")) == {("succeeded", 1)}
