from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from common.ids import MAX_ID
from connections import selectors
from connections.models import (
    Connection,
    ConnectionChange,
    ConnectRequest,
    ConnectRequestStatus,
    Job,
    Provider,
    RefreshRun,
    Schedule,
)
from tenants import access
from wixapi import types as wix

# Serializers of rows are output only. Their relations are read-only: a writable one
# offers its whole queryset (every tenant's rows) as choices in the browsable API's forms.


class NoInputSerializer(serializers.Serializer):
    """The input of an action that takes none: its browsable-API form is a button."""


class PortalIdField(serializers.IntegerField):
    """A portal id in a body: beyond 64 bits no row can have it, so it is a field error."""

    def __init__(self, **kwargs):
        super().__init__(min_value=1, max_value=MAX_ID, **kwargs)


class ProviderSerializer(serializers.ModelSerializer):
    class Meta:
        model = Provider
        fields = [
            "id",
            "tenant",
            "wix_id",
            "name",
            "calendar_type",
            "connect_methods",
            "import_capability",
            "export_capability",
            "can_update_sync_config",
            "removed_at",
        ]
        read_only_fields = ["tenant"]


class ScheduleSerializer(serializers.ModelSerializer):
    label = serializers.CharField(read_only=True)

    class Meta:
        model = Schedule
        fields = [
            "id",
            "tenant",
            "wix_id",
            "label",
            "name",
            "external_id",
            "app_id",
            "status",
            "time_zone",
            "removed_at",
        ]
        read_only_fields = ["tenant"]


class ScheduleRefSerializer(serializers.ModelSerializer):
    label = serializers.CharField(read_only=True)

    class Meta:
        model = Schedule
        fields = ["id", "wix_id", "label"]


class ProviderRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Provider
        fields = ["id", "wix_id", "name", "calendar_type"]


class CalendarSerializer(serializers.Serializer):
    id = serializers.CharField(max_length=512)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class ImportSerializer(serializers.Serializer):
    enabled = serializers.BooleanField()
    mode = serializers.ChoiceField(
        choices=[m.value for m in wix.ImportMode],
        required=False,
        allow_null=True,
        help_text="PRIMARY: the primary calendar; CALENDARS: the calendars listed.",
    )
    calendars = CalendarSerializer(many=True, required=False, default=list)


class ExportSerializer(serializers.Serializer):
    enabled = serializers.BooleanField()
    mode = serializers.ChoiceField(
        choices=[m.value for m in wix.ExportMode],
        required=False,
        allow_null=True,
        help_text="PRIMARY: the primary calendar; DEDICATED: a calendar Wix creates for it.",
    )


class SyncConfigSerializer(serializers.Serializer):
    """The complete desired sync config; what the provider cannot do is refused with 400."""

    def get_fields(self):
        # `import` is a Python keyword, so the fields are named here rather than declared.
        return {"import": ImportSerializer(), "export": ExportSerializer()}

    def to_representation(self, instance):
        # The browsable API prefills the form with the connection's current config.
        if isinstance(instance, Connection):
            instance = sync_config_of(instance)
        return super().to_representation(instance)

    def validate(self, attrs):
        for direction in ("import", "export"):
            part = attrs[direction]
            if part["enabled"] and not part.get("mode"):
                raise serializers.ValidationError({direction: ["Choose a mode to enable it."]})
        if attrs["import"].get("mode") != wix.ImportMode.CALENDARS and attrs["import"]["calendars"]:
            raise serializers.ValidationError(
                {"import": ["Calendars are chosen only with mode CALENDARS."]}
            )
        return attrs

    def to_sync_config(self) -> wix.SyncConfig:
        imp, exp = self.validated_data["import"], self.validated_data["export"]
        return wix.SyncConfig(
            list_event_from_calendars=wix.ImportConfig(
                enabled=imp["enabled"],
                mode=wix.ImportMode(imp["mode"]) if imp.get("mode") else None,
                calendars=tuple(wix.Calendar(id=c["id"], name=c["name"]) for c in imp["calendars"]),
            ),
            sync_to_calendar=wix.ExportConfig(
                enabled=exp["enabled"],
                mode=wix.ExportMode(exp["mode"]) if exp.get("mode") else None,
            ),
        )


class ConnectionSerializer(serializers.ModelSerializer):
    schedule = ScheduleRefSerializer(read_only=True)
    provider = ProviderRefSerializer(read_only=True)
    sync_config = serializers.SerializerMethodField()

    # The columns read here, which is all the list loads: not the Wix JSON of the row, its
    # schedule and its provider, nor their dates (a fifth of a page's time at 100 rows).
    # A field added without its column costs a query per row (tests count queries).
    COLUMNS = (
        *("id", "tenant_id", "wix_id", "calendar_type", "user_id", "app_id"),
        *("external_account_email", "status", "error_reason", "status_changed_at"),
        *("import_enabled", "import_mode", "import_calendars", "export_enabled", "export_mode"),
        *("first_seen_at", "last_seen_at", "removed_at"),
        *("schedule__id", "schedule__wix_id", "schedule__name", "schedule__default_title"),
        *("provider__id", "provider__wix_id", "provider__name", "provider__calendar_type"),
    )

    class Meta:
        model = Connection
        fields = [
            "id",
            "tenant",
            "wix_id",
            "schedule",
            "provider",
            "calendar_type",
            "user_id",
            "app_id",
            "external_account_email",
            "status",
            "error_reason",
            "sync_config",
            "first_seen_at",
            "last_seen_at",
            "status_changed_at",
            "removed_at",
        ]
        read_only_fields = ["tenant"]

    @extend_schema_field(SyncConfigSerializer)
    def get_sync_config(self, row: Connection) -> dict:
        return sync_config_of(row)


def sync_config_of(row: Connection) -> dict:
    return {
        "import": {
            "enabled": row.import_enabled,
            "mode": row.import_mode or None,
            "calendars": row.import_calendars,
        },
        "export": {"enabled": row.export_enabled, "mode": row.export_mode or None},
    }


class ConnectionChangeSerializer(serializers.ModelSerializer):
    class Meta:
        model = ConnectionChange
        fields = [
            "id",
            "connection",
            "refresh_run",
            "kind",
            "field",
            "old_value",
            "new_value",
            "changed_at",
        ]
        read_only_fields = ["connection", "refresh_run"]


class RefreshRunSerializer(serializers.ModelSerializer):
    class Meta:
        model = RefreshRun
        fields = [
            "id",
            "tenant",
            "trigger",
            "started_at",
            "finished_at",
            "outcome",
            "new_count",
            "changed_count",
            "unchanged_count",
            "removed_count",
            "failed_provider_ids",
            "error_code",
            "error_message",
            "wix_request_id",
            "wix_calls",
        ]
        read_only_fields = ["tenant"]


class OAuthConnectSerializer(serializers.Serializer):
    tenant = PortalIdField(help_text="The portal id of the tenant.")
    schedule = PortalIdField(help_text="The portal id of the schedule.")
    provider = PortalIdField(help_text="The portal id of the provider.")


class CredentialsConnectSerializer(OAuthConnectSerializer):
    email = serializers.EmailField()
    password = serializers.CharField(
        write_only=True,
        style={"input_type": "password"},
        trim_whitespace=False,
        help_text="Sent to Wix once; never stored.",
    )


class ConnectRequestSerializer(serializers.ModelSerializer):
    """A connect request; `oauth_url`, a bearer link that acts for the tenant, only to those
    who may act on the tenant themselves, and only while the request can still complete."""

    oauth_url = serializers.SerializerMethodField()

    class Meta:
        model = ConnectRequest
        fields = [
            "id",
            "tenant",
            "schedule",
            "provider",
            "method",
            "status",
            "error",
            "oauth_url",
            "connection",
            "created_at",
            "expires_at",
            "completed_at",
        ]
        read_only_fields = ["tenant", "schedule", "provider", "connection"]

    @extend_schema_field(
        serializers.CharField(
            allow_null=True,
            help_text="While pending and unexpired, to operators of the tenant; else null.",
        )
    )
    def get_oauth_url(self, row: ConnectRequest) -> str | None:
        live = row.status == ConnectRequestStatus.PENDING and row.expires_at > timezone.now()
        if not (live and row.oauth_url and self._may_act_on(row.tenant_id)):
            return None
        return row.oauth_url

    def _may_act_on(self, tenant_id: int) -> bool:
        # Once per response, not per row: a list stays at its number of queries.
        if "operable_tenant_ids" not in self.context:
            request = self.context.get("request")
            user = getattr(request, "user", None)
            ids = access.operable_tenant_ids(user) if user is not None else []
            self.context["operable_tenant_ids"] = None if ids is None else set(ids)
        ids = self.context["operable_tenant_ids"]
        return ids is None or tenant_id in ids


class EventSerializer(serializers.Serializer):
    schedule_id = serializers.CharField()
    calendar_type = serializers.CharField()
    calendar_name = serializers.CharField()
    title = serializers.CharField()
    start = serializers.DateTimeField(allow_null=True)
    end = serializers.DateTimeField(allow_null=True)
    all_day = serializers.BooleanField()
    schedule_owner_id = serializers.CharField()
    schedule_owner_name = serializers.CharField()


# Wix refuses longer windows (the sandbox at 366 days; docs/wix-contract.md §6.4 leaves the limit
# open): refused here as a field error instead of passing Wix's refusal on as a 502.
MAX_EVENTS_WINDOW = timedelta(days=366)
# Calendar events live in this era; dates near year 1 or 9999 only overflow date arithmetic.
EVENTS_ERA = (datetime(1970, 1, 1, tzinfo=UTC), datetime(3000, 1, 1, tzinfo=UTC))


class EventsQuerySerializer(serializers.Serializer):
    start = serializers.DateTimeField(
        help_text="Window start (RFC 3339), Wix's `from`; 1970 to 2999."
    )
    end = serializers.DateTimeField(
        help_text="Window end (RFC 3339), Wix's `to`; at most 366 days after start."
    )
    schedule_ids = serializers.ListField(
        child=serializers.CharField(max_length=64), required=False, default=list, max_length=100
    )
    user_ids = serializers.ListField(
        child=serializers.CharField(max_length=64), required=False, default=list, max_length=100
    )
    include_titles = serializers.BooleanField(required=False, default=False)
    offset = serializers.IntegerField(required=False, default=0, min_value=0)
    limit = serializers.IntegerField(required=False, default=100, min_value=1, max_value=1000)

    def validate_start(self, value: datetime) -> datetime:
        return _in_events_era(value)

    def validate_end(self, value: datetime) -> datetime:
        return _in_events_era(value)

    def validate(self, attrs):
        if attrs["end"] <= attrs["start"]:
            raise serializers.ValidationError({"end": ["Must be after start."]})
        if attrs["end"] - attrs["start"] > MAX_EVENTS_WINDOW:
            raise serializers.ValidationError(
                {"end": [f"At most {MAX_EVENTS_WINDOW.days} days after start."]}
            )
        return attrs


def _in_events_era(value: datetime) -> datetime:
    first, last = EVENTS_ERA
    if not first <= value < last:
        raise serializers.ValidationError(f"Must be from {first.year} to {last.year - 1}.")
    return value


class JobSerializer(serializers.ModelSerializer):
    status = serializers.SerializerMethodField()
    result = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = ["id", "tenant", "kind", "status", "result", "created_at"]
        read_only_fields = ["tenant"]

    def _status(self, job: Job) -> selectors.JobStatus:
        # Asked twice per job (status, result): read once.
        cache = self.context.setdefault("job_statuses", {})
        if job.pk not in cache:
            cache[job.pk] = selectors.job_status(job)
        return cache[job.pk]

    def get_status(self, job: Job) -> str:
        return self._status(job).status

    @extend_schema_field({"type": "object", "additionalProperties": {}, "nullable": True})
    def get_result(self, job: Job):
        return self._status(job).result
