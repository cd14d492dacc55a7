"""Shared by the scripting commands: secrets from stdin or the environment, one-line errors."""

import argparse
import os
import sys
from collections.abc import Callable

from django.contrib.auth import get_user_model
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.management.base import CommandError, CommandParser

from common.ids import MAX_ID  # noqa: F401 - the commands' id bound, imported from here too


def add_secret_options(parser: CommandParser, *, prefix: str, what: str) -> None:
    """The two ways a command takes a secret: `--<prefix>-stdin` and `--<prefix>-env VAR`."""
    parser.add_argument(
        f"--{prefix}-stdin", action="store_true", help=f"Read the {what} from stdin."
    )
    parser.add_argument(
        f"--{prefix}-env", metavar="VAR", help=f"Read the {what} from environment variable VAR."
    )


def read_secret(*, options, stdin_flag: str, env_flag: str, what: str) -> str:
    """Return the secret given through exactly one of the two flags; raise CommandError otherwise.

    Secrets never come from argv (it shows in `ps` and shell history).
    """
    from_stdin = options[stdin_flag.lstrip("-").replace("-", "_")]
    env_var = options[env_flag.lstrip("-").replace("-", "_")]
    if from_stdin and env_var:
        raise CommandError(f"Give the {what} with {stdin_flag} or {env_flag} VAR, not both.")
    if from_stdin:
        stream = options.get("stdin") or sys.stdin
        value = stream.read().strip()
        if not value:
            raise CommandError(f"No {what} on stdin.")
        return value
    if env_var:
        if env_var not in os.environ:
            raise CommandError(f"Environment variable {env_var} is not set.")
        value = os.environ[env_var].strip()
        if not value:
            raise CommandError(f"Environment variable {env_var} is empty.")
        return value
    raise CommandError(f"Give the {what} with {stdin_flag} or {env_flag} VAR.")


def validation_message(error: ValidationError) -> str:
    """Return a ValidationError as one line: "field: message; field: message"."""
    if not hasattr(error, "error_dict"):
        return " ".join(error.messages)
    parts = []
    for field, messages in error.message_dict.items():
        text = " ".join(messages)
        parts.append(text if field == NON_FIELD_ERRORS else f"{field}: {text}")
    return "; ".join(parts)


def bounded_int(low: int, high: int, *, what: str) -> Callable[[str], int]:
    """An add_argument type: a whole number from low to high; otherwise a one-line error."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, not {text!r}.") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected {what} from {low} to {high}, not {value}.")
        return value

    return parse


def one_line_errors(parser: CommandParser) -> CommandParser:
    """Usage mistakes from the command line as one line on stderr and exit status 1, like a
    CommandError, instead of argparse's usage block and status 2 (call_command still gets
    its CommandError)."""
    raise_or_exit = parser.error

    def error(message: str):
        if parser.called_from_command_line:
            parser.exit(1, f"CommandError: {message}\n")
        raise_or_exit(message)

    parser.error = error
    return parser


def add_acting_user(parser: CommandParser) -> None:
    """The --user option of a command that acts: whom its audit rows name."""
    parser.add_argument(
        "--user",
        metavar="USERNAME",
        help="The portal user this is done as, named in the audit trail (default: none, "
        "recorded as the system).",
    )


def acting_user(username: str | None):
    """The active user named by --user, None without one; CommandError for an unknown name.

    A command runs with the shell's power, not the user's: the user only says who asked.
    """
    if not username:
        return None
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None:
        raise CommandError(f"No active user {username!r}.")
    return user
