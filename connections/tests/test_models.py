"""One-row rules on the mirror's models: what a provider can do, what a connection offers."""

from __future__ import annotations

import pytest

from connections.models import Connection, Provider
from connections.services.refresh import tenant_refresh
from wixapi import types as wix

IMPORT, EXPORT = wix.ImportMode, wix.ExportMode


@pytest.mark.parametrize(
    ("capability", "modes", "default"),
    [
        ("PRIMARY_CALENDAR_ONLY", {IMPORT.PRIMARY}, IMPORT.PRIMARY),
        ("SPECIFIC_CALENDARS", {IMPORT.PRIMARY, IMPORT.CALENDARS}, IMPORT.PRIMARY),
        ("NOT_SUPPORTED", set(), None),
        # Unsure: every mode is offered and Wix answers.
        ("UNDEFINED", set(IMPORT), IMPORT.PRIMARY),
        ("", set(IMPORT), IMPORT.PRIMARY),
    ],
)
def test_a_providers_import_modes(capability, modes, default):
    provider = Provider(import_capability=capability)

    assert (provider.import_modes(), provider.default_import_mode()) == (modes, default)


@pytest.mark.parametrize(
    ("capability", "modes", "default"),
    [
        ("PRIMARY_CALENDAR_ONLY", {EXPORT.PRIMARY}, EXPORT.PRIMARY),
        # Wix has no field for a specific export calendar: the primary it is.
        ("SPECIFIC_CALENDAR", {EXPORT.PRIMARY}, EXPORT.PRIMARY),
        ("DEDICATED_CALENDAR", {EXPORT.DEDICATED}, EXPORT.DEDICATED),
        ("NOT_SUPPORTED", set(), None),
        ("UNDEFINED", set(EXPORT), EXPORT.DEDICATED),
    ],
)
def test_a_providers_export_modes(capability, modes, default):
    provider = Provider(export_capability=capability)

    assert (provider.export_modes(), provider.default_export_mode()) == (modes, default)


def sync_config(imp: dict, exp: dict) -> dict:
    return {"syncConfig": {"listEventFromCalendars": imp, "syncToCalendar": exp}}


def test_a_connection_offers_its_own_modes_too():
    provider = Provider(
        import_capability="PRIMARY_CALENDAR_ONLY", export_capability="PRIMARY_CALENDAR_ONLY"
    )
    # Made by Wix with modes its provider's features do not list.
    row = Connection(
        provider=provider,
        raw=sync_config(
            {"enabled": True, "calendars": {"calendars": [{"id": "c1"}]}},
            {"enabled": False, "dedicatedCalendar": {}},
        ),
    )

    assert row.import_modes() == {IMPORT.PRIMARY, IMPORT.CALENDARS}
    assert row.export_modes() == {EXPORT.PRIMARY, EXPORT.DEDICATED}


def test_a_disabled_placeholder_is_not_offered_where_the_provider_cannot():
    provider = Provider(import_capability="NOT_SUPPORTED", export_capability="NOT_SUPPORTED")
    row = Connection(
        provider=provider,
        raw=sync_config(
            {"enabled": False, "primaryCalendar": {}}, {"enabled": False, "primaryCalendar": {}}
        ),
    )

    assert (row.import_modes(), row.export_modes()) == (set(), set())
    assert (Connection(raw={}).import_modes(), Connection(raw={}).export_modes()) == (set(), set())


@pytest.mark.django_db
def test_is_broken_is_the_broken_querysets_rule_for_one_row(wix_sandbox, site, tenant):
    wix_sandbox.set_connection_error(site.id, site.ben_microsoft)
    kept = wix_sandbox.add_connection(site.id, schedule_id=site.anna, calendar_type="I_CAL")
    wix_sandbox.disconnect_on_wix(site.id, kept)
    tenant_refresh(tenant)
    wix_sandbox.remove_connection(site.id, site.ben_microsoft)
    tenant_refresh(tenant)
    wix_sandbox.add_connection(
        site.id, schedule_id=site.ben, calendar_type="GOOGLE", status="ERROR"
    )
    tenant_refresh(tenant)

    rows = Connection.objects.for_tenant(tenant)
    broken = {row.wix_id for row in rows if row.is_broken}
    assert broken == set(rows.broken().values_list("wix_id", flat=True))
    assert len(broken) == 2  # the disconnected one and the new error; the removed one is not
