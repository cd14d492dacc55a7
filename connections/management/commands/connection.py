"""`manage.py connection disconnect|refresh|import|export|reconnect-link ...`: a connection's
verbs, for scripts, as the admin and the API run them."""

from __future__ import annotations

import argparse
from functools import partial
from urllib.parse import urlsplit

from django.core.management.base import BaseCommand, CommandError

from common.ids import MAX_ID
from connections import messages as words
from connections.messages import describe_wix_error, name_of
from connections.models import Connection
from connections.services.actions import (
    connection_disconnect,
    connection_reconnect_link,
    connection_refresh,
    connection_set_direction,
)
from connections.services.errors import ActionRefused
from connections.views import oauth_return_url
from tenants.management.inputs import acting_user, add_acting_user, one_line_errors
from tenants.models import Via
from wixapi.errors import WixError

SWITCH = {"on": True, "off": False}


def find_connection(reference: str) -> Connection:
    """The connection with this portal id; CommandError naming it when there is none."""
    reference = reference.strip()
    if not reference.isdigit() or int(reference) > MAX_ID:
        raise CommandError(f"No connection {reference}: give its id in the portal.")
    connection = (
        Connection.objects.select_related("tenant__wix_app", "schedule", "provider")
        .filter(pk=int(reference))
        .first()
    )
    if connection is None:
        raise CommandError(f"No connection {reference}.")
    return connection


def base_url(text: str) -> str:
    """An add_argument type: the portal's address as calendar owners reach it."""
    parts = urlsplit(text)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise argparse.ArgumentTypeError(
            f"expected the portal's address, such as https://portal.example.com, not {text!r}."
        )
    return text


class Command(BaseCommand):
    help = (
        "Act on one connection, as the admin and the API do, and record it in the audit "
        "trail: disconnect it, refresh it from Wix, turn its import or export on or off, or "
        "print a link for its calendar owner to reconnect it. Exits with status 1 when the "
        "portal or Wix refuses."
    )

    def create_parser(self, prog_name, subcommand, **kwargs):
        return one_line_errors(super().create_parser(prog_name, subcommand, **kwargs))

    def add_arguments(self, parser):
        verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
        for name, help_text in [
            ("disconnect", "Disconnect it in Wix (Wix stops syncing its calendar)."),
            ("refresh", "Read it from Wix now and update the mirror."),
        ]:
            self._connection_parser(verbs, name, help_text)
        for direction in ("import", "export"):
            self._connection_parser(
                verbs, direction, f"Turn its {direction} on or off.", switch=True
            )
        reconnect = self._connection_parser(
            verbs, "reconnect-link", "Print an OAuth link for its owner to connect it again."
        )
        reconnect.add_argument(
            "--base-url",
            required=True,
            type=base_url,
            help="The portal's address the owner returns to, e.g. https://portal.example.com.",
        )

    @staticmethod
    def _connection_parser(verbs, name: str, help_text: str, *, switch: bool = False):
        sub = one_line_errors(verbs.add_parser(name, help=help_text, description=help_text))
        if switch:
            # Said as people say it: `manage.py connection import off 12`.
            sub.add_argument("switch", choices=list(SWITCH), help="on or off")
        sub.add_argument("connection", help="The connection's id in the portal.")
        add_acting_user(sub)
        return sub

    def handle(self, *args, verb, connection, **options):
        user = acting_user(options["user"])
        found = find_connection(connection)
        name = name_of(found)
        act = {"user": user, "via": Via.COMMAND}
        try:
            if verb == "disconnect":
                line = words.disconnected(connection_disconnect(found, **act))
            elif verb == "refresh":
                line = words.refreshed(connection_refresh(found, **act))
            elif verb in ("import", "export"):
                row = connection_set_direction(
                    found, direction=verb, enabled=SWITCH[options["switch"]], **act
                )
                line = words.direction_set(verb, row)
            else:
                started = connection_reconnect_link(
                    found, return_url=partial(oauth_return_url, options["base_url"]), **act
                )
                # The link alone, for a script to pass on.
                self.stdout.write(started.oauth_url)
                return
        except ActionRefused as refused:
            # The reconnect rules' words follow the name ("…: not broken (Synced); ...").
            if refused.code:
                raise CommandError(f"{name}: {refused.message}") from None
            raise CommandError(f"{name}: {_not_done(verb)}. {refused.message}") from None
        except WixError as exc:
            raise CommandError(f"{name}: {_not_done(verb)}. {describe_wix_error(exc)}") from None
        self.stdout.write(f"{name}: {line}.")


def _not_done(verb: str) -> str:
    if verb in ("import", "export"):
        return words.direction_not_set(verb)
    return {
        "disconnect": words.NOT_DISCONNECTED,
        "refresh": words.NOT_REFRESHED,
        "reconnect-link": words.NO_LINK,
    }[verb]
