"""`manage.py tenant verify|activate|deactivate TENANT`: a tenant's verbs, for scripts and cron."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from common.ids import MAX_ID
from tenants.management.inputs import acting_user, add_acting_user, one_line_errors
from tenants.models import Tenant, Via
from tenants.services.tenants import tenant_set_active, tenant_verify_credentials


def find_tenant(reference: str) -> Tenant:
    """The tenant with this portal id or site ID; CommandError naming it when there is none."""
    reference = reference.strip()
    lookup = {"pk": int(reference)} if reference.isdigit() else {"site_id": reference.lower()}
    if lookup.get("pk", 0) > MAX_ID:
        raise CommandError(f"No tenant {reference}.")
    tenant = Tenant.objects.select_related("wix_app").filter(**lookup).first()
    if tenant is None:
        raise CommandError(f"No tenant {reference}.")
    return tenant


class Command(BaseCommand):
    help = (
        "Act on one tenant, as the admin and the API do, and record it in the audit trail: "
        "verify (check its credentials with Wix), activate or deactivate (its refreshes)."
    )

    def create_parser(self, prog_name, subcommand, **kwargs):
        return one_line_errors(super().create_parser(prog_name, subcommand, **kwargs))

    def add_arguments(self, parser):
        parser.add_argument("verb", choices=["verify", "activate", "deactivate"])
        parser.add_argument("tenant", help="The tenant's id in the portal, or its site ID.")
        add_acting_user(parser)

    def handle(self, *args, verb, tenant, **options):
        user = acting_user(options["user"])
        found = find_tenant(tenant)
        if verb == "verify":
            if not tenant_verify_credentials(found, user=user, via=Via.COMMAND):
                raise CommandError(f"{found}: credentials refused: {found.credentials_error}")
            self.stdout.write(f"{found}: credentials OK.")
            return
        active = verb == "activate"
        tenant_set_active(found, active=active, user=user, via=Via.COMMAND)
        self.stdout.write(f"{found}: {'active' if active else 'inactive'}.")
