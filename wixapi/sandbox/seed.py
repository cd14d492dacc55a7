"""Demo data and fleet generation. Names are fixed; ids and secrets are fresh per call."""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from typing import Any

from .state import ERROR_REASONS, Sandbox


@dataclass
class DemoSite:
    site_id: str
    name: str
    instance_id: str | None = None  # set when reached through the OAuth app
    api_key: str | None = None  # set when reached through the account API key


@dataclass
class Credentials:
    """What a portal needs to reach the seeded sites. Holds secrets: don't log it."""

    app_id: str
    app_secret: str
    account_id: str
    api_key: str | None = None
    sites: list[DemoSite] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# (site name, premium, [(staff name, calendarType or None, status, errorReason, import mode)])
DEMO_SITES = (
    (
        "Salon Aurora",
        True,
        [
            ("Anna Lee", "GOOGLE", "SYNCED", None, "CALENDARS"),
            ("Ben Okafor", "MICROSOFT", "SYNC_IN_PROGRESS", None, "PRIMARY"),
            ("Chloe Martin", "GOOGLE", "ERROR", "TOKEN_REVOKED", "PRIMARY"),
            ("Diego Ruiz", "I_CAL", "CONNECTED", None, "PRIMARY"),
            ("Emma Novak", None, None, None, None),
        ],
    ),
    (
        "Studio Brisa",
        True,
        [
            ("Farah Haddad", "GOOGLE", "ERROR", "EXTERNAL_CALENDAR_DELETED", "PRIMARY"),
            ("George Ito", "MICROSOFT", "SYNCED", None, "CALENDARS"),
            ("Hana Kim", "GOOGLE", "DISCONNECTED", None, "PRIMARY"),
            ("Ivan Petrov", "MICROSOFT", "ERROR", "EXTERNAL_CALENDAR_CREATION_FAILED", "PRIMARY"),
        ],
    ),
    (
        # Not premium: List Calendars and Connect By Credentials answer 403 here.
        "Cedar Physio",
        False,
        [
            ("Julia Santos", "GOOGLE", "SYNCED", None, "PRIMARY"),
            ("Kofi Mensah", "I_CAL", "SYNCED", None, "PRIMARY"),
            ("Lena Fischer", None, None, None, None),
        ],
    ),
)
# Sites reached through the OAuth app; the rest through the account API key.
DEMO_APP_SITES = 2


def _email(name: str) -> str:
    return ".".join(name.lower().split()) + "@example.com"


def seed_demo(sb: Sandbox) -> Credentials:
    """Add the three demo sites (connections in every status and error reason) to `sb`.

    One OAuth app is installed on the first two sites; an API key reaches the third.
    """
    account_id = sb.new_guid()
    app_id, app_secret = sb.create_app()
    api_key = sb.create_api_key(account_id)
    creds = Credentials(app_id, app_secret, account_id, api_key)
    for index, (site_name, premium, staff) in enumerate(DEMO_SITES):
        site = sb.add_site(name=site_name, premium=premium, account_id=account_id)
        for name, calendar_type, status, reason, import_mode in staff:
            schedule_id = sb.add_schedule(site.id, name=name, time_zone="Europe/Lisbon")
            if calendar_type:
                sb.add_connection(
                    site.id,
                    schedule_id=schedule_id,
                    calendar_type=calendar_type,
                    status=status,
                    error_reason=reason,
                    email=_email(name),
                    import_mode=import_mode,
                )
        if index < DEMO_APP_SITES:
            creds.sites.append(DemoSite(site.id, site_name, sb.install_app(app_id, site.id)))
        else:
            creds.sites.append(DemoSite(site.id, site_name, api_key=api_key))
    # A former staff member's schedule: hidden by Query Schedules' default ACTIVE filter.
    sb.add_schedule(creds.sites[0].site_id, name="Former Staff", status="CANCELLED")
    return creds


FIRST_NAMES = ("Ada", "Bo", "Cy", "Dee", "Eli", "Fay", "Gus", "Ivy", "Jo", "Kai", "Lu", "Mo")
LAST_NAMES = ("Ng", "Ortiz", "Park", "Quinn", "Rossi", "Silva", "Tanaka", "Umar", "Vega", "Wu")
# (status, error reason, weight): mostly healthy, a few of everything else.
FLEET_STATUSES = (
    ("SYNCED", None, 80),
    ("CONNECTED", None, 5),
    ("SYNC_IN_PROGRESS", None, 5),
    ("DISCONNECTED", None, 4),
    *(("ERROR", reason, 2) for reason in ERROR_REASONS),
)
FLEET_TYPES = (("GOOGLE", 6), ("MICROSOFT", 3), ("I_CAL", 1))


def generate_fleet(
    sb: Sandbox,
    sites: int = 1000,
    connections_per_site: int = 25,
    seed: int = 1,
    *,
    premium: bool = True,
) -> Credentials:
    """Add `sites` sites of one account, each with that many staff schedules and connections.

    Every site has the OAuth app installed and is also reachable by the account API key,
    so `DemoSite.instance_id` and `api_key` are both set. Statuses follow `seed`.
    """
    rng = random.Random(seed)
    account_id = sb.new_guid()
    app_id, app_secret = sb.create_app()
    api_key = sb.create_api_key(account_id)
    creds = Credentials(app_id, app_secret, account_id, api_key)
    statuses = [(s, r) for s, r, _ in FLEET_STATUSES]
    status_weights = [w for _, _, w in FLEET_STATUSES]
    types = [t for t, _ in FLEET_TYPES]
    type_weights = [w for _, w in FLEET_TYPES]
    with sb.lock:
        for number in range(1, sites + 1):
            site_name = f"Fleet Site {number:04d}"
            site = sb.add_site(name=site_name, premium=premium, account_id=account_id)
            for _ in range(connections_per_site):
                name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
                schedule_id = sb.add_schedule(site.id, name=name)
                status, reason = rng.choices(statuses, status_weights)[0]
                sb.add_connection(
                    site.id,
                    schedule_id=schedule_id,
                    calendar_type=rng.choices(types, type_weights)[0],
                    status=status,
                    error_reason=reason,
                    email=_email(name),
                )
            instance_id = sb.install_app(app_id, site.id)
            creds.sites.append(DemoSite(site.id, site_name, instance_id, api_key))
    return creds


# The List Connections example of the Wix REST reference (External Calendar v2, "List
# Connections", dev.wix.com/docs/rest/business-solutions/bookings/calendar/external-calendar-v2/
# list-connections). The first connection is copied from the example as published.
DOCS_ICAL_PROVIDER_ID = "9f084ae8-b3a6-4eb6-a29d-bc682c04b5fc"
DOCS_SCHEDULE_ID = "100ef23e-9e92-4293-8e08-d3747537138f"
DOCS_USER_ID = "f7f363b1-8ef8-4118-9612-0e6b3910745a"
DOCS_ICAL_CALENDAR_IDS = (
    "2cnk4sgx4haqxbuz0sao0flxw",
    "4xve0tohyhnrlzy3lp4zf7b07",
    "a68yu6lp6584z66zorp19z1ab",
)
# [U] Of the second connection only its id is copied from the example; the rest is rebuilt
# from the contract's Connection shape (docs/wix-contract.md §1): a Google connection
# exporting to the primary calendar, with neither `userId` nor `appId`. The provider id is
# made up here.
DOCS_GOOGLE_PROVIDER_ID = "2d1f6c7e-43b8-4a59-9e0d-6b7c8f9a0b1c"
DOCS_EXAMPLE_CONNECTIONS: tuple[dict[str, Any], ...] = (
    {
        "id": "4WnvD8QzxhkAjVPBKUCvLIMpbuuUCMID7rYhqOpIGDae9JYyQj0JS71sdJukve86B38sWvS6TOvMQqBxszj"
        "EMN7MfiUjvCwgx0inoCXpg7JpM0QXmxYW4E2dXHAmKaNKk4M5jez8KwwxQxUNygYrvR0V08GW0weMqwMW1GYslMM1"
        "kVPcGuiwqJ7",
        "providerId": DOCS_ICAL_PROVIDER_ID,
        "calendarType": "I_CAL",
        "scheduleId": DOCS_SCHEDULE_ID,
        "userId": DOCS_USER_ID,
        "externalAccountEmail": "some@email.com",
        "status": "CONNECTED",
        "syncConfig": {
            "listEventFromCalendars": {
                "enabled": True,
                "calendars": {"calendars": [{"id": cid} for cid in DOCS_ICAL_CALENDAR_IDS]},
            }
        },
    },
    {
        "id": "NKUjjvm8geI1xEEE6pU5of0blj4oIHvJy7M4KGCDHidQzOiHHWchOJ31inHqv3fCFo5mtX62Wp5PV4Kv5cT"
        "JRANJJbw1ukkwesjQVKeM7VAjq8ErrMDutLTq2dDvkUc0eFN36l3n1g45JWkAn1t8d",
        "providerId": DOCS_GOOGLE_PROVIDER_ID,
        "calendarType": "GOOGLE",
        "scheduleId": DOCS_SCHEDULE_ID,
        "externalAccountEmail": "some@email.com",
        "status": "CONNECTED",
        "syncConfig": {"syncToCalendar": {"enabled": True, "primaryCalendar": {}}},
    },
)


def seed_docs_example(sb: Sandbox) -> Credentials:
    """Add a site whose List Connections answers the Wix docs' example, key for key.

    Its Google provider says DEDICATED_CALENDAR while the example's Google connection exports
    to the primary calendar: a config Wix made that the provider's features do not list. The
    iCal provider lets the connection's calendars be chosen. One OAuth app is installed on
    the site, and the account's API key reaches it too.
    """
    account_id = sb.new_guid()
    app_id, app_secret = sb.create_app()
    api_key = sb.create_api_key(account_id)
    creds = Credentials(app_id, app_secret, account_id, api_key)
    site_name = "Docs Example"
    with sb.lock:
        site = sb.add_site(
            name=site_name, premium=True, account_id=account_id, with_default_providers=False
        )
        sb.add_provider(
            site.id,
            "Apple iCal",
            "I_CAL",
            ("CREDENTIALS",),
            True,
            "SPECIFIC_CALENDARS",
            "NOT_SUPPORTED",
            provider_id=DOCS_ICAL_PROVIDER_ID,
        )
        sb.add_provider(
            site.id,
            "Google",
            "GOOGLE",
            ("OAUTH",),
            True,
            "SPECIFIC_CALENDARS",
            "DEDICATED_CALENDAR",
            provider_id=DOCS_GOOGLE_PROVIDER_ID,
        )
        sb.add_schedule(
            site.id, name="Docs Staff", user_id=DOCS_USER_ID, schedule_id=DOCS_SCHEDULE_ID
        )
        ical, google = DOCS_EXAMPLE_CONNECTIONS
        # The account's calendars: the example's ids; the names are the sandbox's.
        names = ("Primary", "Work", "Family")
        sb.add_listed_connection(
            site.id,
            ical,
            calendars=[
                {"id": c, "name": n} for c, n in zip(DOCS_ICAL_CALENDAR_IDS, names, strict=True)
            ],
        )
        sb.add_listed_connection(site.id, google)
        instance_id = sb.install_app(app_id, site.id)
    creds.sites.append(DemoSite(site.id, site_name, instance_id, api_key))
    return creds
