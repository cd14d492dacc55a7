"""The public OAuth return page accepts only what its connect request asked for."""

from __future__ import annotations

import pytest
from django.test import Client

from connections.messages import OAUTH_ERRORS
from connections.models import ConnectRequest, ConnectRequestStatus, Provider, Schedule
from connections.services.connect import StartedConnect, oauth_connect_start
from tenants.models import Via
from tenants.tests.builders import staff_user

pytestmark = pytest.mark.django_db


def start_for_anna(tenant) -> StartedConnect:
    return oauth_connect_start(
        tenant=tenant,
        schedule=Schedule.objects.get(tenant=tenant, name="Anna Lee"),
        provider=Provider.objects.get(tenant=tenant, calendar_type="GOOGLE"),
        return_url=lambda state: f"http://testserver/connect/return/{state}/",
        user=staff_user("olga"),
        via=Via.ADMIN,
    )


def test_another_schedules_connection_is_not_linked_nor_called_a_success(site, mirrored):
    started = start_for_anna(mirrored)

    # Ben's connection (another schedule, another provider) put in the link's query.
    page = Client().get(f"/connect/return/{started.state}/", {"connectionId": site.ben_microsoft})

    assert page.status_code == 200
    html = page.content.decode()
    assert "Calendar not connected" in html
    assert OAUTH_ERRORS["wrong_connection"] in html
    request = ConnectRequest.objects.get()
    assert (request.status, request.error, request.connection) == (
        ConnectRequestStatus.FAILED,
        "wrong_connection",
        None,
    )


@pytest.mark.parametrize("error", ["\x00", "<script>x</script>", "reject\x00"])
def test_an_error_that_is_not_wixs_is_kept_as_internal(mirrored, error):
    started = start_for_anna(mirrored)

    page = Client().get(f"/connect/return/{started.state}/", {"error": error})

    assert page.status_code == 200
    assert OAUTH_ERRORS["internal"] in page.content.decode()
    assert ConnectRequest.objects.get().error == "internal"
