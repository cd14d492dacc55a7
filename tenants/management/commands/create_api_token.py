"""`manage.py create_api_token USER [--expiry DAYS]`: print a new API token, once."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from tenants.management.inputs import acting_user, add_acting_user, bounded_int, one_line_errors
from tenants.models import Via
from tenants.services.api_tokens import api_token_create

# Ten years, as the admin's token form allows; far larger overflows the date arithmetic.
MAX_EXPIRY_DAYS = 3650


class Command(BaseCommand):
    help = (
        "Create an API token for USER and print it. It is shown only this once; the portal "
        "keeps only a hash. The token sees what USER sees."
    )

    def create_parser(self, prog_name, subcommand, **kwargs):
        return one_line_errors(super().create_parser(prog_name, subcommand, **kwargs))

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument(
            "--expiry",
            type=bounded_int(0, MAX_EXPIRY_DAYS, what="a number of days"),
            default=90,
            metavar="DAYS",
            help=f"Days until the token expires (default 90, at most {MAX_EXPIRY_DAYS}; "
            "0 for never).",
        )
        add_acting_user(parser)

    def handle(self, *args, username, expiry, **options):
        by = acting_user(options["user"])
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user named {username!r}.")
        if not user.is_active:
            raise CommandError(f"User {username!r} is inactive.")
        if not user.is_staff:
            # The API refuses tokens of users who are not staff.
            raise CommandError(f"User {username!r} is not staff; the API would refuse its token.")
        instance, token = api_token_create(
            user, expiry=timedelta(days=expiry) if expiry else None, user=by, via=Via.COMMAND
        )
        when = (
            f"expires {instance.expiry:%Y-%m-%d %H:%M} UTC" if instance.expiry else "never expires"
        )
        self.stderr.write(f"Token for {username} ({when}); store it now, it is not shown again:")
        self.stdout.write(token)
