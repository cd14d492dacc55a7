"""Forms of the tenant control room: connect a calendar, list events.

Choices come from the tenant's mirror only (present rows), so a form never offers, nor
accepts, another tenant's schedule or provider.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from django import forms
from django.utils import timezone

from tenants.models import Tenant

from .models import ConnectMethodChoice, Provider, Schedule

# A listing of events over a longer window pages through too much of Wix for one page view.
MAX_EVENT_DAYS = 92
DEFAULT_EVENT_DAYS = 14
# Wix takes at most 100 schedule ids per List Events call.
MAX_EVENT_SCHEDULES = 100

METHOD_HELP = {
    ConnectMethodChoice.OAUTH: "You get a link to send to the calendar owner, who approves access.",
    ConnectMethodChoice.CREDENTIALS: "You enter the calendar account's email and password; "
    "they go to Wix once and are not kept.",
}


# How a method reads inside a sentence.
METHOD_WORDS = {
    ConnectMethodChoice.OAUTH: "OAuth link",
    ConnectMethodChoice.CREDENTIALS: "email and password",
}


class ScheduleChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Schedule) -> str:
        return obj.label


class ScheduleMultipleChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj: Schedule) -> str:
        return obj.label


class ProviderSelect(forms.Select):
    """A select whose options carry the provider's connect methods (`data-methods`)."""

    def __init__(self, *args, methods: dict[str, list[str]] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.methods = methods or {}

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        methods = self.methods.get(str(value))
        if methods is not None:
            option["attrs"]["data-methods"] = " ".join(methods)
        return option


class ProviderChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Provider) -> str:
        methods = ", ".join(METHOD_WORDS[m] for m in obj.connect_methods if m in METHOD_WORDS)
        return f"{obj.name} ({methods or 'no connect method'})"


def connectable_schedules(tenant: Tenant):
    return Schedule.objects.for_tenant(tenant).present().exclude(status="CANCELLED")


def connectable_providers(tenant: Tenant):
    return Provider.objects.for_tenant(tenant).present()


class ConnectStartForm(forms.Form):
    """Step 1: which schedule, how, and with which provider."""

    schedule = ScheduleChoiceField(queryset=Schedule.objects.none(), empty_label="Choose…")
    method = forms.ChoiceField(
        choices=ConnectMethodChoice.choices,
        widget=forms.RadioSelect,
        initial=ConnectMethodChoice.OAUTH,
        label="Connect by",
    )
    provider = ProviderChoiceField(queryset=Provider.objects.none(), empty_label="Choose…")

    def __init__(self, *args, tenant: Tenant, **kwargs):
        super().__init__(*args, **kwargs)
        self.tenant = tenant
        self.fields["schedule"].queryset = connectable_schedules(tenant)
        providers = connectable_providers(tenant)
        # The widget first: setting the queryset hands it the choices.
        self.fields["provider"].widget = ProviderSelect(
            methods={str(p.pk): list(p.connect_methods) for p in providers}
        )
        self.fields["provider"].queryset = providers
        self.fields["method"].help_text = " ".join(
            f"{ConnectMethodChoice(m).label}: {text}" for m, text in METHOD_HELP.items()
        )

    def clean(self):
        cleaned_data = super().clean()
        provider: Provider | None = cleaned_data.get("provider")
        method = cleaned_data.get("method")
        if provider is not None and method and not provider.supports(method):
            words = METHOD_WORDS[ConnectMethodChoice(method)]
            self.add_error("provider", f"{provider.name} does not connect by {words}.")
        return cleaned_data


class CredentialsForm(forms.Form):
    """Step 2 of a credentials connect. The password is never rendered back."""

    email = forms.EmailField(label="Calendar account email", max_length=254)
    password = forms.CharField(
        label="Calendar account password",
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Sent to Wix once to connect the calendar; the portal does not keep it.",
    )


class EventsForm(forms.Form):
    """Which events to list: a date range (both days included), schedules, titles or not."""

    start = forms.DateField(label="From", widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(
        label="To",
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Included.",
    )
    schedules = ScheduleMultipleChoiceField(
        queryset=Schedule.objects.none(),
        required=False,
        help_text="None chosen: every schedule.",
        widget=forms.SelectMultiple(attrs={"size": 6}),
    )
    include_titles = forms.BooleanField(
        label="Include titles",
        required=False,
        help_text="Event titles and calendar names are personal information (OWN_PI).",
    )

    def __init__(self, *args, tenant: Tenant, **kwargs):
        super().__init__(*args, **kwargs)
        self.tenant = tenant
        self.fields["schedules"].queryset = Schedule.objects.for_tenant(tenant).present()

    @staticmethod
    def default_range(today: date | None = None) -> dict[str, date]:
        today = today or timezone.localdate()
        return {"start": today, "end": today + timedelta(days=DEFAULT_EVENT_DAYS)}

    def clean_schedules(self):
        schedules = self.cleaned_data["schedules"]
        if len(schedules) > MAX_EVENT_SCHEDULES:
            raise forms.ValidationError(f"Choose at most {MAX_EVENT_SCHEDULES} schedules.")
        return schedules

    def clean(self):
        cleaned_data = super().clean()
        start, end = cleaned_data.get("start"), cleaned_data.get("end")
        if start and end:
            if end < start:
                self.add_error("end", "The end date must not be before the start date.")
            elif (end - start).days + 1 > MAX_EVENT_DAYS:
                days = (end - start).days + 1
                self.add_error(
                    "end", f"Choose at most {MAX_EVENT_DAYS} days at a time; this range has {days}."
                )
        return cleaned_data

    def window(self) -> tuple[datetime, datetime]:
        """The range as aware datetimes: from the start day's midnight to after the end day."""
        start, end = self.cleaned_data["start"], self.cleaned_data["end"]
        zone = timezone.get_current_timezone()
        return (
            timezone.make_aware(datetime.combine(start, time.min), zone),
            timezone.make_aware(datetime.combine(end + timedelta(days=1), time.min), zone),
        )
