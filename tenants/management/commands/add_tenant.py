"""Add or update a tenant for scripting; the API key never comes from argv."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from tenants.management.inputs import (
    acting_user,
    add_acting_user,
    add_secret_options,
    read_secret,
    validation_message,
)
from tenants.models import Tenant, Via, WixApp, validate_guid
from tenants.services.tenants import tenant_save


class Command(BaseCommand):
    help = (
        "Add a tenant (one client Wix site) and print its id. Give exactly one way in: "
        "--wix-app with --instance-id, --api-key-stdin, or --api-key-env VAR. "
        "An existing site ID is an error unless --update is given."
    )
    stealth_options = ("stdin",)

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True)
        parser.add_argument("--site-id", required=True, help="The site ID (a GUID).")
        parser.add_argument("--notes", default=None)
        parser.add_argument(
            "--wix-app",
            metavar="APP_ID",
            help="The Wix app: the id printed by add_wix_app, or its app ID (GUID).",
        )
        parser.add_argument(
            "--instance-id", help="The Wix app's instance ID on this site (a GUID)."
        )
        add_secret_options(parser, prefix="api-key", what="API key")
        parser.add_argument(
            "--update",
            action="store_true",
            help="Update the tenant with this site ID if it exists (its way in is replaced).",
        )
        add_acting_user(parser)

    def handle(self, *args, **options):
        user = acting_user(options["user"])
        wants_app = options["wix_app"] is not None or options["instance_id"] is not None
        wants_key = options["api_key_stdin"] or options["api_key_env"] is not None
        if wants_app == wants_key:
            raise CommandError(
                "Give exactly one way in: --wix-app with --instance-id, "
                "--api-key-stdin, or --api-key-env VAR."
            )
        if wants_app:
            if options["wix_app"] is None:
                raise CommandError("--instance-id needs --wix-app.")
            if options["instance_id"] is None:
                raise CommandError("--wix-app needs --instance-id.")
            wix_app = find_wix_app(options["wix_app"])
        else:
            api_key = read_secret(
                options=options,
                stdin_flag="--api-key-stdin",
                env_flag="--api-key-env",
                what="API key",
            )

        site_id = options["site_id"].strip().lower()
        with transaction.atomic():
            tenant = Tenant.objects.select_for_update().filter(site_id=site_id).first()
            if tenant is None:
                tenant = Tenant(site_id=site_id)
            elif not options["update"]:
                raise CommandError(
                    f"A tenant with site ID {site_id} already exists (id {tenant.pk}); "
                    "pass --update to change it."
                )
            tenant.name = options["name"]
            if options["notes"] is not None:
                tenant.notes = options["notes"]
            if wants_app:
                tenant.use_wix_app(wix_app, instance_id=options["instance_id"].strip())
            else:
                tenant.use_api_key(api_key)
            try:
                tenant.full_clean()
            except ValidationError as exc:
                raise CommandError(validation_message(exc)) from None
            tenant_save(tenant, user=user, via=Via.COMMAND)
        self.stdout.write(str(tenant.pk))


def find_wix_app(reference: str) -> WixApp:
    """Return the WixApp named by our id or by its app ID (GUID); raise CommandError if none."""
    reference = reference.strip()
    if reference.isdigit():
        lookup = {"pk": int(reference)}
    else:
        try:
            validate_guid(reference)
        except ValidationError:
            raise CommandError(
                f"--wix-app {reference!r} is neither a Wix app id nor an app ID (GUID)."
            ) from None
        lookup = {"app_id": reference.lower()}
    try:
        return WixApp.objects.get(**lookup)
    except WixApp.DoesNotExist:
        raise CommandError(f"No Wix app {reference}.") from None
