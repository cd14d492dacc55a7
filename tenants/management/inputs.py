"""Shared by the scripting commands: secrets from stdin or the environment, one-line errors."""

import os
import sys

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.management.base import CommandError


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
