"""`manage.py check_health`: what /healthz answers, in one line, for cron."""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand

from portal import health


class Command(BaseCommand):
    help = (
        "Print in one line whether refreshes still happen: the age of the last completed "
        "refresh pass, as /healthz answers it. Exits with status 1 when it is older than 3 "
        "refresh intervals (stale) or no pass ever completed (never), 0 when ok."
    )

    def handle(self, *args, **options):
        result = health.check()
        self.stdout.write(result.line())
        if not result.ok:
            sys.exit(1)
