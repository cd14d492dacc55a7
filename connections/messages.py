"""Words for people: Wix's refusals in plain language, and how a connection is named."""

from __future__ import annotations

from wixapi.errors import WixError

from .models import Connection

# Wix's answers to a refused OAuth consent, in words a calendar owner understands.
OAUTH_ERRORS = {
    "reject": "The calendar owner declined access.",
    "unsupported": "This kind of calendar account is not supported by the provider.",
    "internal": "Wix could not complete the connection. Please try again later.",
    "wrong_connection": "This link was answered with another calendar connection than the "
    "one it asked for, so nothing was connected.",
}
WRONG_CONNECTION = "wrong_connection"

# Wix's codes for a refused credentials connect, in plain language (docs/wix-contract.md §1.5).
CREDENTIALS_ERRORS = {
    "BAD_CREDENTIALS": "The email or password was not accepted by the calendar provider.",
    "PREMIUM_FEATURE_NOT_ENABLED": "This site's Wix plan does not include calendar "
    "connections by email and password.",
    "NOT_SUPPORTED_BY_PROVIDER": "This provider does not connect with an email and password.",
}


def describe_wix_error(error: WixError) -> str:
    """Wix's own message and code, for showing a person."""
    return f"{error.message or 'Wix refused the request.'} (Wix: {error.code})"


def explain(error: WixError) -> str:
    """A credentials connect's failure in plain language, with Wix's code for support.

    Only for Connect By Credentials: elsewhere the same codes mean other things.
    """
    plain = CREDENTIALS_ERRORS.get(error.code)
    if plain is None:
        return describe_wix_error(error)
    return f"{plain} (Wix: {error.code})"


def name_of(connection: Connection) -> str:
    """How a connection is named in messages: "Salon Aurora: Anna Lee (Google)"."""
    who = connection.schedule.label if connection.schedule else connection.schedule_wix_id[:8]
    kind = connection.provider.name if connection.provider else connection.calendar_type
    return f"{connection.tenant.name}: {who} ({kind or 'calendar'})"


# What a verb on one connection did, or that it did not, after its name: "…: disconnected;
# Wix shows it as Disconnected." The admin and `manage.py connection` say the same.
def disconnected(row: Connection) -> str:
    return f"disconnected; Wix shows it as {row.get_status_display()}"


def refreshed(row: Connection) -> str:
    return f"refreshed from Wix; status {row.get_status_display()}"


def direction_set(direction: str, row: Connection) -> str:
    described = row.describe_import() if direction == "import" else row.describe_export()
    return f"{direction} is now {described}"


NOT_DISCONNECTED = "not disconnected"
NOT_REFRESHED = "not refreshed"
NO_LINK = "no link"


def direction_not_set(direction: str) -> str:
    return f"{direction} not changed"
