"""The sandbox serves the List Connections example of the Wix docs (see data/README.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from wixapi.client import ApiKeyAuth, RetryPolicy, WixClient
from wixapi.sandbox import seed_docs_example
from wixapi.types import ExportMode, ImportMode

EC = "/bookings/v2/external-calendars"
EXAMPLE_TEXT = (Path(__file__).parent / "data" / "list_connections_example.json").read_text()
EXAMPLE = json.loads(EXAMPLE_TEXT)


def ordered(text: str):
    """The JSON with every object as its list of (key, value) pairs: key order counts."""
    return json.loads(text, object_pairs_hook=list)


@pytest.fixture
def docs_site(wix_sandbox):
    return seed_docs_example(wix_sandbox).sites[0]


def call(sandbox, site, method: str, path: str, **kwargs) -> requests.Response:
    headers = {"Authorization": site.api_key, "wix-site-id": site.site_id}
    return requests.request(method, sandbox.url + path, headers=headers, timeout=5, **kwargs)


def test_list_connections_answers_the_docs_example(wix_sandbox, docs_site):
    response = call(wix_sandbox, docs_site, "GET", f"{EC}/connections")

    assert response.status_code == 200
    assert response.json() == EXAMPLE
    assert ordered(response.text) == ordered(EXAMPLE_TEXT)


def test_get_connection_answers_each_example_connection(wix_sandbox, docs_site):
    for listed in EXAMPLE["connections"]:
        response = call(wix_sandbox, docs_site, "GET", f"{EC}/connections/{listed['id']}")

        assert response.json() == {"connection": listed}


def test_the_example_connections_read_as_documented(wix_sandbox, docs_site):
    client = WixClient(
        wix_sandbox.url,
        auth=ApiKeyAuth(api_key=docs_site.api_key, site_id=docs_site.site_id),
        retry=RetryPolicy(max_retries=0),
        timeout=2,
    )

    ical, google = client.list_connections(partial_failure=False).connections

    imp = ical.sync_config.list_event_from_calendars
    assert (imp.enabled, imp.mode) == (True, ImportMode.CALENDARS)
    assert [c.id for c in imp.calendars] == [
        c["id"]
        for c in EXAMPLE["connections"][0]["syncConfig"]["listEventFromCalendars"]["calendars"][
            "calendars"
        ]
    ]
    assert (ical.sync_config.sync_to_calendar.enabled, ical.app_id) == (False, "")
    exp = google.sync_config.sync_to_calendar
    assert (exp.enabled, exp.mode) == (True, ExportMode.PRIMARY)
    assert (google.user_id, google.app_id) == ("", "")
    assert [c.id for c in client.list_calendars(ical.id)] == [c.id for c in imp.calendars]


def test_wix_takes_back_a_config_it_made_but_refuses_a_change_beyond_the_provider(
    wix_sandbox, docs_site
):
    google = EXAMPLE["connections"][1]
    path = f"{EC}/connections/{google['id']}/sync-config"
    own = {**google["syncConfig"], "listEventFromCalendars": {"enabled": False}}

    resent = call(wix_sandbox, docs_site, "PATCH", path, json={"syncConfig": own})
    ical_id = EXAMPLE["connections"][0]["id"]
    export = {"syncToCalendar": {"enabled": True, "primaryCalendar": {}}}
    refused = call(
        wix_sandbox,
        docs_site,
        "PATCH",
        f"{EC}/connections/{ical_id}/sync-config",
        json={"syncConfig": {**EXAMPLE["connections"][0]["syncConfig"], **export}},
    )

    assert resent.status_code == 200, resent.text
    assert resent.json()["connection"]["syncConfig"]["syncToCalendar"] == {
        "enabled": True,
        "primaryCalendar": {},
    }
    assert refused.status_code == 428
    assert refused.json()["details"]["applicationError"]["code"] == "NOT_SUPPORTED_BY_PROVIDER"
