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
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone
from django_celery_results.models import TaskResult

from alerts import tasks
from alerts.models import Delivery
from alerts.services import deliveries, endpoints
from alerts.tests.helpers import attempts_of, make_endpoint
from connections.tests.test_redis_outage import RedisServer
from tenants.models import Via

pytestmark = [
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
        reason="needs PostgreSQL (DATABASE_URL=postgres://...): worker processes and "
        "threads share the test database",
    ),
]

ROOT = Path(__file__).resolve().parents[2]
VISIBILITY_TIMEOUT = 3
LEASE_SECONDS = 2
TIMEOUT = 30
QUEUE = "webhook-worker-lost"

WORKER = f"""
from portal.celery import app
app.conf.broker_transport_options = {{
    "visibility_timeout": {VISIBILITY_TIMEOUT},
    "unacked_restore_interval": 1,
    "unacked_restore_throttle": 1,
}}
app.worker_main(["worker", "--pool=solo", "-Q", "{QUEUE}", "--loglevel=INFO",
                 "--without-gossip", "--without-mingle", "--without-heartbeat"])
"""


@pytest.fixture
def broker() -> Iterator[RedisServer]:
    executable = shutil.which("redis-server")
    if executable is None:
        pytest.skip("redis-server is not on PATH (apt-get install redis-server)")
    server = RedisServer(executable)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def start_worker(broker, tmp_path) -> Iterator:
    db = connection.settings_dict
    environment = {
        **os.environ,
        "DATABASE_URL": (
            f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST'] or '127.0.0.1'}:"
            f"{db['PORT'] or 5432}/{db['NAME']}"
        ),
        "CELERY_BROKER_URL": f"redis://127.0.0.1:{broker.port}/0",
        "CACHE_URL": f"rediscache://127.0.0.1:{broker.port}/1",
        "SECRET_KEY": settings.SECRET_KEY,
        "PORTAL_ENCRYPTION_KEYS": ",".join(settings.PORTAL_ENCRYPTION_KEYS),
        "WEBHOOK_ALLOW_HOSTS": "127.0.0.1",
        "WEBHOOK_TIMEOUT_SECONDS": "10",
        "WEBHOOK_LEASE_SECONDS": str(LEASE_SECONDS),
        "CONN_MAX_AGE": "0",
    }
    started: list[subprocess.Popen] = []

    def start() -> subprocess.Popen:
        log_path = tmp_path / f"worker-{len(started)}.log"
        with log_path.open("w") as log:
            process = subprocess.Popen(  # noqa: S603 (our own interpreter)
                [sys.executable, "-c", WORKER],
                cwd=ROOT,
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        process.log_path = log_path
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


def wait_until(condition, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.1)


def test_a_delivery_whose_worker_was_killed_mid_send_is_sent_once_more(
    broker, start_worker, staff, webhook_receiver, settings
):
    settings.WEBHOOK_LEASE_SECONDS = LEASE_SECONDS
    endpoint, secret = make_endpoint(staff, webhook_receiver.url)
    webhook_receiver.secrets = [secret]
    delivery = endpoints.endpoint_send_test(endpoint, acting_user=staff, via=Via.API)
    # The worker is inside the attempt while the receiver sits on it.
    webhook_receiver.stall(5.0)
    # The project's Celery app, reached through the task (portal sits above alerts).
    with tasks.deliver.app.connection_for_write(f"redis://127.0.0.1:{broker.port}/0") as conn:
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
    made = [
        endpoints.endpoint_send_test(endpoint, acting_user=staff, via=Via.API) for _ in range(30)
    ]
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
