"""Read-only admins of providers, schedules, refresh runs and connection changes."""

from __future__ import annotations

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db import connection as db
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from connections.models import ConnectionChange, Provider, RefreshRun, Schedule
from connections.services.refresh import tenant_refresh
from connections.tests.builders import add_site, connection
from tenants.tests.builders import staff_user

pytestmark = pytest.mark.django_db

MODELS = {
    "provider": Provider,
    "schedule": Schedule,
    "refreshrun": RefreshRun,
    "connectionchange": ConnectionChange,
}
# Mirrored rows are listed present-only by default.
ALL = {"provider": "?removed=all", "schedule": "?removed=all"}


def url(model_name: str, view: str = "changelist", *args) -> str:
    return reverse(f"admin:connections_{model_name}_{view}", args=args)


@pytest.fixture
def aurora(wix_sandbox):
    return add_site(
        wix_sandbox,
        "Salon Aurora",
        [
            {"name": "Anna Lee", "calendar_type": "GOOGLE", "email": "anna@aurora.test"},
            {
                "name": "Ben Okafor",
                "calendar_type": "MICROSOFT",
                "status": "ERROR",
                "email": "ben@aurora.test",
            },
        ],
    )


@pytest.fixture
def tenant_b(tenant_b, wix_sandbox, brisa):
    """The conftest's Studio Brisa, with a failed refresh run besides its good one."""
    wix_sandbox.faults(brisa.id).server_error(times=1, status=500)
    tenant_refresh(tenant_b)
    return tenant_b


def rows(response) -> list:
    return list(response.context["cl"].result_list)


def tenants_of(response) -> set[str]:
    return {row.tenant.name for row in rows(response)}


@pytest.mark.parametrize("model_name", MODELS)
def test_lists_show_own_tenant_only(client, operator_of_a, tenant_a, tenant_b, model_name):
    for query in ["", ALL.get(model_name, "?"), f"?tenant={tenant_a.pk}"]:
        response = client.get(url(model_name) + query)
        assert response.status_code == 200, query
        assert tenants_of(response) == {"Salon Aurora"}, query
    for query in [f"?tenant={tenant_b.pk}", "?q=Brisa", "?q=Farah"]:
        response = client.get(url(model_name) + query)
        assert response.status_code == 200, query
        assert rows(response) == [], query
    tenant_filter = client.get(url(model_name)).context["cl"].filter_specs[0]
    assert [name for _, name in tenant_filter.lookup_choices] == ["Salon Aurora"]


@pytest.mark.parametrize("model_name", MODELS)
def test_superuser_sees_every_tenant(admin_client, tenant_a, tenant_b, model_name):
    response = admin_client.get(url(model_name))

    assert tenants_of(response) == {"Salon Aurora", "Studio Brisa"}


@pytest.mark.parametrize("model_name", MODELS)
def test_other_tenants_rows_are_not_found(client, operator_of_a, tenant_a, tenant_b, model_name):
    model = MODELS[model_name]
    own = model.objects.filter(tenant=tenant_a).first()
    other = model.objects.filter(tenant=tenant_b).first()

    assert client.get(url(model_name, "change", own.pk)).status_code == 200
    for view in ["change", "history"]:
        response = client.get(url(model_name, view, other.pk))
        assert (response.status_code, response["Location"]) == (302, reverse("admin:index"))


@pytest.mark.parametrize("model_name", MODELS)
@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_rows_cannot_be_added_changed_or_deleted(client, tenant_a, tenant_b, model_name, role):
    client.force_login(staff_user("someone", **{f"{role}_of": (tenant_a,)}))
    model = MODELS[model_name]
    own = model.objects.filter(tenant=tenant_a).first()
    other = model.objects.filter(tenant=tenant_b).first()
    count = model.objects.count()

    page = client.get(url(model_name))
    forged = client.post(
        url(model_name),
        {"action": "delete_selected", "index": "0", ACTION_CHECKBOX_NAME: [own.pk, other.pk]},
    )

    assert page.context["action_form"] is None
    assert forged.status_code == 200
    assert client.get(url(model_name, "add")).status_code == 403
    assert client.post(url(model_name, "change", own.pk), {}).status_code == 403
    assert client.post(url(model_name, "delete", own.pk), {"post": "yes"}).status_code == 403
    assert model.objects.count() == count


def grow(wix_sandbox, aurora, tenant_a, model_name: str) -> None:
    """Give tenant A about 30 rows of the model."""
    if model_name == "provider":
        for number in range(28):
            wix_sandbox.add_provider(aurora.id, f"Provider {number}", "OTHER")
    elif model_name == "refreshrun":
        for _ in range(29):
            tenant_refresh(tenant_a)
        return
    else:
        for number in range(28):
            schedule = wix_sandbox.add_schedule(aurora.id, name=f"Extra {number}")
            wix_sandbox.add_connection(aurora.id, schedule_id=schedule, calendar_type="GOOGLE")
    tenant_refresh(tenant_a)


@pytest.mark.parametrize("model_name", MODELS)
def test_list_query_count_is_constant(
    client, django_assert_max_num_queries, wix_sandbox, aurora, operator_of_a, tenant_a, model_name
):
    list_url = url(model_name) + ALL.get(model_name, "")
    client.get(list_url)
    with CaptureQueriesContext(db) as few:
        assert len(rows(client.get(list_url))) <= 4
    grow(wix_sandbox, aurora, tenant_a, model_name)

    with django_assert_max_num_queries(len(few)):
        response = client.get(list_url)

    assert len(rows(response)) >= 30


def test_refresh_run_list_and_page(client, wix_sandbox, aurora, operator_of_a, tenant_a):
    microsoft = aurora.providers["MICROSOFT"]
    wix_sandbox.faults(aurora.id).fail_provider(microsoft)
    partial = tenant_refresh(tenant_a)
    wix_sandbox.faults(aurora.id).restore_provider(microsoft)
    wix_sandbox.faults(aurora.id).server_error(times=1, status=500)
    failed = tenant_refresh(tenant_a)

    html = client.get(url("refreshrun")).content.decode()
    page = client.get(url("refreshrun", "change", partial.pk)).content.decode()

    assert '<span class="portal-badge portal-warn">Partial</span>' in html
    assert '<span class="portal-badge portal-bad">Failed</span>' in html
    assert '<span class="portal-badge portal-good">OK</span>' in html
    assert "INTERNAL: Wix failed on its side" in html
    assert "2 / 0 / 0 / 0" in html  # the first refresh: two new connections
    assert f"Microsoft ({microsoft})" in page
    assert failed.outcome == "failed"
    assert client.get(url("refreshrun") + "?outcome__exact=failed").context["cl"].result_count == 1


def test_change_list_of_one_connection(
    client, wix_sandbox, aurora, operator_of_a, tenant_a, tenant_b
):
    wix_sandbox.set_connection_error(aurora.id, aurora.connections["Anna Lee"], "TOKEN_REVOKED")
    tenant_refresh(tenant_a)
    anna = connection(tenant_a, "Anna Lee")
    farah = connection(tenant_b, "Farah Haddad")

    mine = client.get(url("connectionchange") + f"?connection__id__exact={anna.pk}")
    theirs = client.get(url("connectionchange") + f"?connection__id__exact={farah.pk}")

    assert [(c.kind, c.field, c.old_value, c.new_value) for c in rows(mine)] == [
        ("changed", "error_reason", "", "TOKEN_REVOKED"),
        ("changed", "status", "SYNCED", "ERROR"),
        ("appeared", "", None, "SYNCED"),
    ]
    assert "SYNCED → ERROR" in mine.content.decode()
    assert rows(theirs) == []


@pytest.mark.parametrize(
    ("model_name", "field_name", "expected"),
    [
        ("connection", "tenant", {"Salon Aurora"}),
        ("connection", "schedule", {"Anna Lee", "Ben Okafor"}),
        ("connection", "provider", {"Google", "Microsoft", "Apple iCal"}),
        ("connectionchange", "connection", {"Anna Lee", "Ben Okafor"}),
    ],
)
def test_autocomplete_is_scoped(
    client, operator_of_a, tenant_a, tenant_b, model_name, field_name, expected
):
    endpoint = reverse("admin:autocomplete")
    query = f"?app_label=connections&model_name={model_name}&field_name={field_name}"

    everything = client.get(f"{endpoint}{query}&term=")
    other = client.get(f"{endpoint}{query}&term=Brisa")

    assert everything.status_code == 200
    texts = {r["text"] for r in everything.json()["results"]}
    assert {text.split(":")[0] for text in texts} == expected
    assert "Farah Haddad" not in str(texts)
    assert other.json()["results"] == []


def test_autocomplete_for_staff_without_tenants_is_refused(client, tenant_a):
    client.force_login(staff_user("newcomer"))
    query = "?app_label=connections&model_name=connection&field_name=schedule&term="

    assert client.get(reverse("admin:autocomplete") + query).status_code == 403
