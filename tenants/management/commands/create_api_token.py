"""`manage.py create_api_token USER [--expiry DAYS]`: print a new API token, once."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from knox.models import AuthToken


class Command(BaseCommand):
    help = (
        "Create an API token for USER and print it. It is shown only this once; the portal "
        "keeps only a hash. The token sees what USER sees."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument(
            "--expiry",
            type=int,
            default=90,
            metavar="DAYS",
            help="Days until the token expires (default 90; 0 for never).",
        )

    def handle(self, *args, username, expiry, **options):
        if expiry < 0:
            raise CommandError("--expiry takes a number of days, 0 or more.")
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user named {username!r}.")
        if not user.is_active:
            raise CommandError(f"User {username!r} is inactive.")
        instance, token = AuthToken.objects.create(
            user=user, expiry=timedelta(days=expiry) if expiry else None
        )
        when = (
            f"expires {instance.expiry:%Y-%m-%d %H:%M} UTC" if instance.expiry else "never expires"
        )
        self.stderr.write(f"Token for {username} ({when}); store it now, it is not shown again:")
        self.stdout.write(token)
