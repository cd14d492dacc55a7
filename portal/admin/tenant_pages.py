"""The tenant's own pages beside its change page: connect a calendar, list its events.

A mixin of the control room's admin (portal/admin/tenants.py): the pages live under the
tenant's admin URL and use its scoping (`TenantScopedAdmin.reach`).
"""

from __future__ import annotations

from functools import partial

from django.contrib import messages
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_post_parameters

from connections import selectors
from connections.connect_forms import ConnectStartForm, CredentialsForm, EventsForm
from connections.messages import describe_wix_error, explain
from connections.models import ConnectMethodChoice, Provider, Schedule, choices
from connections.services.connect import credentials_connect, oauth_connect_start
from connections.services.errors import ActionRefused
from connections.views import oauth_return_url
from tenants.models import Tenant, Via
from wixapi import types as wix
from wixapi.errors import WixError

CALENDAR_TYPE_LABELS = dict(choices(wix.CalendarType))


def connection_admin_url(connection) -> str:
    """The connection's admin page."""
    return reverse("admin:connections_connection_change", args=[connection.pk])


class TenantPages:
    """Connect a calendar (OAuth link or email and password) and list events, per tenant."""

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "<path:object_id>/connect/",
                self.admin_site.admin_view(self.connect_view),
                name="{}_{}_connect".format(*info),
            ),
            path(
                "<path:object_id>/events/",
                self.admin_site.admin_view(self.events_view),
                name="{}_{}_events".format(*info),
            ),
            *super().get_urls(),
        ]

    def _tenant_for(self, request, object_id: str, *, act: bool) -> Tenant:
        """The tenant, if the user may see it (else 404) and, with `act`, act on it (else 403)."""
        return self.reach(request, object_id, act=act)

    def _page(self, request, tenant: Tenant, template: str, title: str, **context):
        opts = self.opts
        return TemplateResponse(
            request,
            template,
            {
                **self.admin_site.each_context(request),
                "opts": opts,
                "title": title,
                "subtitle": tenant.name,
                "tenant": tenant,
                "tenant_url": reverse(
                    f"admin:{opts.app_label}_{opts.model_name}_change", args=[tenant.pk]
                ),
                **context,
            },
        )

    @method_decorator(sensitive_post_parameters("password"))
    def connect_view(self, request, object_id):
        tenant = self._tenant_for(request, object_id, act=True)
        posted = request.method == "POST"
        start = ConnectStartForm(request.POST if posted else None, tenant=tenant)
        if not (posted and start.is_valid()):
            return self._connect_start_page(request, tenant, start)
        schedule = start.cleaned_data["schedule"]
        provider = start.cleaned_data["provider"]
        if start.cleaned_data["method"] == ConnectMethodChoice.OAUTH:
            try:
                started = oauth_connect_start(
                    tenant=tenant,
                    schedule=schedule,
                    provider=provider,
                    return_url=partial(oauth_return_url, request),
                    user=request.user,
                    via=Via.ADMIN,
                )
            except ActionRefused as refused:
                start.add_error(
                    refused.field if refused.field in start.fields else None, refused.message
                )
                return self._connect_start_page(request, tenant, start)
            except WixError as error:
                start.add_error(None, describe_wix_error(error))
                return self._connect_start_page(request, tenant, start)
            return self._page(
                request,
                tenant,
                "admin/tenants/tenant/connect_link.html",
                "Send this link to the calendar owner",
                connect_request=started.request,
                oauth_url=started.oauth_url,
            )
        credentials = CredentialsForm(
            request.POST if request.POST.get("step") == "credentials" else None
        )
        if credentials.is_valid():
            try:
                connection = credentials_connect(
                    tenant=tenant,
                    schedule=schedule,
                    provider=provider,
                    email=credentials.cleaned_data["email"],
                    password=credentials.cleaned_data["password"],
                    user=request.user,
                    via=Via.ADMIN,
                )
            except ActionRefused as refused:
                credentials.add_error(None, refused.message)
            except WixError as error:
                credentials.add_error(None, explain(error))
            else:
                self.message_user(
                    request,
                    f"{schedule.label} is now connected to {provider.name} "
                    f"({connection.external_account_email}).",
                    messages.SUCCESS,
                )
                return redirect(
                    connection_admin_url(connection)
                    or reverse("admin:tenants_tenant_change", args=[tenant.pk])
                )
        return self._page(
            request,
            tenant,
            "admin/tenants/tenant/connect_credentials.html",
            "Connect a calendar: email and password",
            start=start,
            credentials=credentials,
            schedule=schedule,
            provider=provider,
        )

    def _connect_start_page(self, request, tenant: Tenant, start: ConnectStartForm):
        return self._page(
            request,
            tenant,
            "admin/tenants/tenant/connect.html",
            "Connect a calendar",
            start=start,
            has_schedules=start.fields["schedule"].queryset.exists(),
        )

    def events_view(self, request, object_id):
        tenant = self._tenant_for(request, object_id, act=False)
        submitted = "start" in request.GET
        form = EventsForm(
            request.GET if submitted else None, tenant=tenant, initial=EventsForm.default_range()
        )
        context = {"form": form, "submitted": submitted, "listing": None}
        if submitted and form.is_valid():
            start, end = form.window()
            include_titles = form.cleaned_data["include_titles"]
            try:
                listing = selectors.events_list(
                    tenant,
                    start=start,
                    end=end,
                    schedule_ids=[s.wix_id for s in form.cleaned_data["schedules"]],
                    include_titles=include_titles,
                )
            except ActionRefused as refused:
                form.add_error(None, refused.message)
            except WixError as error:
                self.message_user(
                    request,
                    f"Wix could not list the events: {describe_wix_error(error)}",
                    messages.ERROR,
                )
            else:
                context.update(
                    listing=listing,
                    rows=self._event_rows(tenant, listing.events),
                    include_titles=include_titles,
                    failed_providers=self._provider_names(tenant, listing.failed_provider_ids),
                    max_events=selectors.MAX_EVENTS,
                )
        return self._page(request, tenant, "admin/tenants/tenant/events.html", "Events", **context)

    @staticmethod
    def _event_rows(tenant: Tenant, events: list[wix.Event]) -> list[dict]:
        labels = {
            s.wix_id: s.label
            for s in Schedule.objects.for_tenant(tenant).filter(
                wix_id__in={e.schedule_id for e in events}
            )
        }
        return [
            {
                "start": e.start,
                "end": e.end,
                "all_day": e.all_day,
                "schedule": labels.get(e.schedule_id, e.schedule_id),
                "calendar_type": CALENDAR_TYPE_LABELS.get(e.calendar_type, e.calendar_type),
                "calendar_name": e.calendar_name,
                "title": e.title,
            }
            for e in events
        ]

    @staticmethod
    def _provider_names(tenant: Tenant, provider_ids: list[str]) -> list[str]:
        if not provider_ids:
            return []
        names = dict(
            Provider.objects.for_tenant(tenant)
            .filter(wix_id__in=provider_ids)
            .values_list("wix_id", "name")
        )
        return [names.get(pid, pid) for pid in provider_ids]
