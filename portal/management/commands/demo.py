"""`manage.py demo`: the portal on SQLite against a seeded Wix sandbox, no account needed."""

from __future__ import annotations

import os

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from alerts.models import WebhookEndpoint
from alerts.receiver import LocalReceiver
from alerts.services.endpoints import endpoint_create, endpoint_delete, endpoint_send_test
from connections.models import RefreshTrigger
from connections.services.passes import pass_start, pass_tenant_done
from connections.services.refresh import tenant_refresh
from portal.demo import DEMO_SEED, ensure_admin, install_demo_tenants
from portal.management.commands.wix_sandbox import PORT
from tenants.management.inputs import one_line_errors
from tenants.models import Via
from tenants.services.tenants import tenant_verify_credentials
from wixapi.sandbox import Sandbox, seed_demo, serve

DEMO_ENDPOINT = "The demo's local receiver"


class Command(BaseCommand):
    help = (
        "Start a seeded Wix sandbox, point the portal at it, create demo tenants and an "
        "admin login, then serve the portal. Development only (DEBUG=true)."
    )

    def create_parser(self, prog_name, subcommand, **kwargs):
        return one_line_errors(super().create_parser(prog_name, subcommand, **kwargs))

    def add_arguments(self, parser):
        parser.add_argument("addrport", nargs="?", default="127.0.0.1:8000")
        parser.add_argument("--sandbox-port", type=PORT, default=8765)
        parser.add_argument(
            "--receiver-port",
            type=PORT,
            default=8766,
            help="Where the local webhook receiver listens (it verifies every signature).",
        )
        parser.add_argument(
            "--no-serve", action="store_true", help="Seed, print the login and exit."
        )

    def handle(self, *args, addrport, sandbox_port, receiver_port, no_serve, **options):
        if not settings.DEBUG:
            raise CommandError("The demo runs only with DEBUG=true (it serves a fake Wix).")
        call_command("migrate", interactive=False, verbosity=0)

        sandbox = Sandbox(seed=DEMO_SEED)
        demo = seed_demo(sandbox)
        try:
            server = serve(sandbox, host="127.0.0.1", port=sandbox_port)
        except OSError as exc:
            raise CommandError(
                f"Cannot serve the Wix sandbox on 127.0.0.1:{sandbox_port} ({exc.strerror}); "
                "pass --sandbox-port with a free port."
            ) from None
        # Settings are read at call time, so every Wix call from here on reaches the sandbox.
        settings.WIX_API_BASE_URL = server.url
        # Webhook endpoints on this machine (a local receiver) are the demo's to try.
        settings.WEBHOOK_ALLOW_HOSTS = [*settings.WEBHOOK_ALLOW_HOSTS, "127.0.0.1", "localhost"]

        tenants = install_demo_tenants(demo)
        # The admin opens on a mirror of the sandbox, refreshed as one pass (as beat does), so
        # the dashboard and /healthz say when.
        first_pass = pass_start(len(tenants), trigger=RefreshTrigger.DEMO)
        for tenant in tenants:
            tenant_verify_credentials(tenant, user=None, via=Via.COMMAND)
            tenant_refresh(tenant, trigger=RefreshTrigger.DEMO, refresh_pass_id=first_pass.pk)
            pass_tenant_done(first_pass.pk)
        login = ensure_admin(password=os.environ.get("DEMO_ADMIN_PASSWORD"))
        receiver = self.start_receiver(receiver_port, owner_name=login.username)

        host = addrport if ":" in addrport else f"127.0.0.1:{addrport}"
        lines = [
            f"  Portal:       http://{host}/admin/",
            f"  Login:        {login.username} / {login.password}",
            f"  Wix sandbox:  {server.url}  ({len(tenants)} demo sites)",
            f"  API docs:     http://{host}/api/docs/",
            f"  Webhooks:     {receiver.url}  (a local receiver that verifies every signature;"
            " its test event is under Alerts > Webhook endpoints)",
            "  Emails:       kept in Alerts > Outbox, none sent",
        ]
        self.stdout.write(
            self.style.SUCCESS("\nThe portal is ready with demo data from the Wix sandbox.\n")
            + "\n".join(lines)
            + "\n"
        )
        if no_serve:
            receiver.stop()
            server.stop()
            return
        try:
            call_command("runserver", addrport, use_reloader=False)
        finally:
            receiver.stop()
            server.stop()

    def start_receiver(self, port: int, *, owner_name: str) -> LocalReceiver:
        """Serve the local receiver, point a new demo endpoint of the admin's at it (the last
        run's goes), and send it a test event, delivered at once."""
        try:
            receiver = LocalReceiver(port=port).start()
        except OSError as exc:
            raise CommandError(
                f"Cannot serve the webhook receiver on 127.0.0.1:{port} ({exc.strerror}); "
                "pass --receiver-port with a free port."
            ) from None
        owner = get_user_model().objects.get(username=owner_name)
        for old in WebhookEndpoint.objects.filter(owner=owner, description=DEMO_ENDPOINT):
            endpoint_delete(old, user=owner, via=Via.COMMAND)
        endpoint, secret = endpoint_create(
            owner=owner,
            url=receiver.url,
            description=DEMO_ENDPOINT,
            user=owner,
            via=Via.COMMAND,
        )
        receiver.secrets.append(secret)
        endpoint_send_test(endpoint, user=owner, via=Via.COMMAND)
        return receiver
