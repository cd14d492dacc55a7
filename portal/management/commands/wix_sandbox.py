"""`manage.py wix_sandbox`: serve the Wix stand-in on its own, with demo data or a fleet."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError

from tenants.management.inputs import bounded_int, one_line_errors
from wixapi.sandbox import Sandbox, generate_fleet, seed_demo, serve

PORT = bounded_int(0, 65535, what="a port")


class Command(BaseCommand):
    help = "Serve the local Wix sandbox (a stand-in for Wix's REST API) until Ctrl-C."

    def create_parser(self, prog_name, subcommand, **kwargs):
        return one_line_errors(super().create_parser(prog_name, subcommand, **kwargs))

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=PORT, default=8765, help="0 for any free port.")
        parser.add_argument("--demo", action="store_true", help="Seed the demo sites.")
        parser.add_argument(
            "--fleet", metavar="SITESxCONNECTIONS", help="Generate a fleet, e.g. 1000x25."
        )

    def handle(self, *args, host, port, demo, fleet, **options):
        sandbox = Sandbox()
        if demo:
            seed_demo(sandbox)
        if fleet:
            try:
                sites, per_site = (int(n) for n in fleet.lower().split("x"))
            except ValueError:
                raise CommandError(
                    f"--fleet takes SITESxCONNECTIONS, e.g. 1000x25, not {fleet!r}"
                ) from None
            generate_fleet(sandbox, sites=sites, connections_per_site=per_site)
        try:
            server = serve(sandbox, host=host, port=port)
        except OSError as exc:
            # strerror is None for a host name that does not resolve (socket.gaierror's
            # text is in args) and for some platform errors.
            reason = exc.strerror or str(exc)
            raise CommandError(f"Cannot listen on {host}:{port} ({reason}).") from None
        self.stdout.write(f"Wix sandbox listening on {server.url} (Ctrl-C to stop)")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
        finally:
            server.stop()
