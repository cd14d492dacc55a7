"""A tenant's events from List Events in the admin: a GET form, a table, errors explained."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.utils import timezone

from connections import selectors
from connections.models import Schedule
from connections.tests.builders import add_site, refreshed_tenant, tenant_admin_url
from tenants.tests.builders import admin_client_for, messages_of, staff_user

pytestmark = pytest.mark.django_db

WEEK = {"start": "2030-03-04", "end": "2030-03-10"}


@pytest.fixture
def client(viewer):
    return admin_client_for(viewer)


def events(client, tenant, **params):
    return client.get(tenant_admin_url("events", tenant.pk), params)


def expected(tenant, *, include_titles=False, schedules=(), **week):
    zone = timezone.get_current_timezone()
    start = timezone.make_aware(timezone.datetime.fromisoformat(week["start"]), zone)
    end = timezone.make_aware(timezone.datetime.fromisoformat(week["end"]), zone)
    return selectors.events_list(
        tenant,
        start=start,
        end=end + timedelta(days=1),
        schedule_ids=[s.wix_id for s in schedules],
        include_titles=include_titles,
    ).events


def test_form_defaults_to_the_next_two_weeks_and_calls_nobody(wix_sandbox, client, mirrored):
    calls = len(wix_sandbox.requests)

    response = events(client, mirrored)

    today = timezone.localdate()
    html = response.content.decode()
    assert response.status_code == 200
    assert f'name="start" value="{today:%Y-%m-%d}"' in html
    assert f'name="end" value="{today + timedelta(days=14):%Y-%m-%d}"' in html
    assert 'method="get"' in html
    assert "events-count" not in html
    assert len(wix_sandbox.requests) == calls


def test_events_of_a_week_without_titles(client, mirrored):
    wanted = expected(mirrored, **WEEK)
    assert wanted  # the sandbox draws about five events a week per connection

    response = events(client, mirrored, **WEEK)

    html = response.content.decode()
    assert response.status_code == 200
    assert len(response.context["rows"]) == len(wanted)
    assert f'<p id="events-count">{len(wanted)} event{"s" if len(wanted) != 1 else ""}</p>' in html
    labels = {row["schedule"] for row in response.context["rows"]}
    assert labels <= {"Anna Lee", "Ben Okafor"}
    assert {row["calendar_type"] for row in response.context["rows"]} <= {"Google", "Microsoft"}
    assert "<th>Title</th>" not in html
    assert all(row["title"] == "" for row in response.context["rows"])
    if any(e.all_day for e in wanted):
        assert "<td>all day</td>" in html


def test_titles_and_one_schedule(client, mirrored):
    anna = Schedule.objects.get(tenant=mirrored, name="Anna Lee")
    wanted = expected(mirrored, include_titles=True, schedules=[anna], **WEEK)

    response = events(client, mirrored, schedules=[anna.pk], include_titles="on", **WEEK)

    html = response.content.decode()
    assert "<th>Title</th>" in html
    assert [row["title"] for row in response.context["rows"]] == [e.title for e in wanted]
    assert all(e.title for e in wanted)
    assert {row["schedule"] for row in response.context["rows"]} == {"Anna Lee"}
    assert wanted[0].title in html


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        (
            {"start": "2030-03-10", "end": "2030-03-04"},
            "end",
            "The end date must not be before the start date.",
        ),
        (
            {"start": "2030-01-01", "end": "2030-04-03"},
            "end",
            "Choose at most 92 days at a time; this range has 93.",
        ),
        ({"start": "soon", "end": "2030-04-03"}, "start", "Enter a valid date."),
    ],
)
def test_invalid_ranges_are_explained(wix_sandbox, client, mirrored, params, field, message):
    calls = len(wix_sandbox.requests)

    response = events(client, mirrored, **params)

    form = response.context["form"]
    assert form.errors == {field: [message]}
    assert response.status_code == 200
    assert len(wix_sandbox.requests) == calls


def test_a_single_day_and_92_days_are_allowed(client, mirrored):
    for params in (
        {"start": "2030-03-04", "end": "2030-03-04"},
        {"start": "2030-01-01", "end": "2030-04-02"},
    ):
        response = events(client, mirrored, **params)
        assert response.context["form"].errors == {}
        assert response.context["listing"] is not None


def test_failed_providers_are_named(wix_sandbox, site, client, mirrored):
    google = wix_sandbox.site(site.id).providers["GOOGLE"]
    wix_sandbox.faults(site.id).fail_provider(google)

    response = events(client, mirrored, **WEEK)

    html = response.content.decode()
    assert response.status_code == 200
    assert (
        "Some calendars could not be read; events from these providers are missing: Google." in html
    )
    assert {row["calendar_type"] for row in response.context["rows"]} <= {"Microsoft"}


def test_long_listings_are_truncated_with_a_note(wix_sandbox, site, client, mirrored):
    for _ in range(80):
        wix_sandbox.add_connection(site.id, schedule_id=site.anna, calendar_type="GOOGLE")
    start = date(2030, 1, 1)

    response = events(
        client, mirrored, start=f"{start:%Y-%m-%d}", end=f"{start + timedelta(days=91):%Y-%m-%d}"
    )

    assert response.context["listing"].truncated
    assert len(response.context["rows"]) == selectors.MAX_EVENTS
    assert (
        f"Only the first {selectors.MAX_EVENTS} events are shown; choose a shorter range "
        "or fewer schedules to see the rest." in response.content.decode()
    )


def test_wix_error_is_a_message_not_a_500(wix_sandbox, site, client, mirrored):
    wix_sandbox.faults(site.id).server_error(times=10, status=500)

    response = events(client, mirrored, **WEEK)

    assert response.status_code == 200
    (message,) = messages_of(response)
    assert message.startswith("Wix could not list the events: ")
    assert message.endswith("(Wix: INTERNAL)")
    assert "events-count" not in response.content.decode()


def test_member_of_a_cannot_list_bs_events_or_use_bs_schedules(wix_sandbox, client, mirrored):
    other = refreshed_tenant(wix_sandbox, add_site(wix_sandbox, "Barber Bravo"))
    calls = len(wix_sandbox.requests)

    foreign = events(client, other, **WEEK)
    borrowed = events(client, mirrored, schedules=[Schedule.objects.get(tenant=other).pk], **WEEK)

    assert foreign.status_code == 404
    assert "Barber Bravo" not in foreign.content.decode()
    assert list(borrowed.context["form"].errors) == ["schedules"]
    assert len(wix_sandbox.requests) == calls


def test_staff_without_membership_gets_404(mirrored):
    response = admin_client_for(staff_user("nobody")).get(
        tenant_admin_url("events", mirrored.pk), WEEK
    )

    assert response.status_code == 404
