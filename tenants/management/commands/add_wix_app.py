"""Register a Wix app (OAuth client credentials) for scripting; the secret never comes from argv."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from tenants.management.inputs import (
    acting_user,
    add_acting_user,
    add_secret_options,
    read_secret,
    validation_message,
)
from tenants.models import Via, WixApp
from tenants.services.wix_apps import wix_app_save


class Command(BaseCommand):
    help = (
        "Add a Wix app (its app ID and app secret from the app's OAuth page) and print its id. "
        "The secret is read from stdin or an environment variable, never from the command line."
    )
    stealth_options = ("stdin",)

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True)
        parser.add_argument("--app-id", required=True, help="The app ID (a GUID).")
        add_secret_options(parser, prefix="secret", what="app secret")
        add_acting_user(parser)

    def handle(self, *args, **options):
        user = acting_user(options["user"])
        secret = read_secret(
            options=options,
            stdin_flag="--secret-stdin",
            env_flag="--secret-env",
            what="app secret",
        )
        wix_app = WixApp(name=options["name"], app_id=options["app_id"], app_secret=secret)
        try:
            wix_app.full_clean()
        except ValidationError as exc:
            raise CommandError(validation_message(exc)) from None
        wix_app_save(wix_app, user=user, via=Via.COMMAND)
        self.stdout.write(str(wix_app.pk))
