"""Tenants (client Wix sites) and the credentials that reach them, encrypted at rest."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from tenants.crypto import DecryptionError
from tenants.fields import EncryptedTextField, Sealed, is_readable, reveal

validate_guid = RegexValidator(
    regex=r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z",
    message="Enter a GUID such as 0b0c0d0e-1a2b-4c3d-8e9f-001122334455.",
    code="invalid_guid",
)

# Shorter secrets would give away too large a share of themselves in the last characters.
HINT_MIN_LENGTH = 12
HINT_TAIL = 4


UNREADABLE = "unreadable: enter it again"
# What a tenant whose stored secret no configured key decrypts shows, and its refreshes and
# actions say: the fix is to type the secret in again (the old key may also be put back).
CREDENTIALS_UNREADABLE = "Credentials unreadable: enter them again."


def secret_hint(value: str | Sealed) -> str:
    """Return a redacted description of a secret: "set, ends in …abcd", "set" or "not set".

    A stored value that no configured key decrypts is "unreadable: enter it again".
    """
    if not value:
        return "not set"
    try:
        value = reveal(value)
    except DecryptionError:
        return UNREADABLE
    if len(value) < HINT_MIN_LENGTH:
        return "set"
    return f"set, ends in …{value[-HINT_TAIL:]}"


class WixApp(models.Model):
    """An agency's Wix app: the OAuth client credentials shared by many tenants.

    Mirrors the app ID and app secret on the app's OAuth page, used for
    Create Access Token (client credentials, one token per app instance):
    https://dev.wix.com/docs/build-apps/develop-your-app/access/authentication/authenticate-using-oauth
    https://dev.wix.com/docs/rest/app-management/oauth-2/create-access-token
    """

    name = models.CharField(max_length=200)
    app_id = models.CharField(
        "app ID", max_length=64, unique=True, validators=[validate_guid], help_text="A GUID."
    )
    app_secret = EncryptedTextField("app secret")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords(excluded_fields=["app_secret"])

    class Meta:
        verbose_name = "Wix app"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self):
        self.app_id = self.app_id.lower()


class CredentialsStatus(models.TextChoices):
    UNVERIFIED = "unverified", "Unverified"
    OK = "ok", "OK"
    FAILED = "failed", "Failed"


class AuthMethod(models.TextChoices):
    OAUTH_APP = "oauth_app", "Wix app (OAuth)"
    API_KEY = "api_key", "API key"


def _tenant_ids(user, *, act: bool) -> list[int] | None:
    """The ids of the tenants `user` may see (or act on), None for all: tenants.access's rule.

    Imported here, not at the top: access reads memberships, so it imports this module.
    """
    from .access import operable_tenant_ids, visible_tenant_ids

    return operable_tenant_ids(user) if act else visible_tenant_ids(user)


class TenantQuerySet(models.QuerySet):
    def active(self):
        return self.filter(is_active=True)

    def visible_to(self, user) -> TenantQuerySet:
        """The tenants `user` may see."""
        ids = _tenant_ids(user, act=False)
        return self if ids is None else self.filter(pk__in=ids)

    def operable_by(self, user) -> TenantQuerySet:
        """The tenants `user` may act on (change, refresh, connect, disconnect)."""
        ids = _tenant_ids(user, act=True)
        return self if ids is None else self.filter(pk__in=ids)


class Tenant(models.Model):
    """One client Wix site, reached in exactly one way: a Wix app instance or an API key.

    `site_id` is the value of the `wix-site-id` header. The two ways in mirror
    API keys: https://dev.wix.com/docs/api-reference/articles/authentication/api-keys/make-api-calls-with-an-api-key
    OAuth:    https://dev.wix.com/docs/build-apps/develop-your-app/access/authentication/authenticate-using-oauth
    """

    name = models.CharField(max_length=200)
    site_id = models.CharField(
        "site ID",
        max_length=64,
        unique=True,
        validators=[validate_guid],
        help_text="A GUID: the site's wix-site-id, as in manage.wix.com/dashboard/<site ID>.",
    )
    notes = models.TextField(blank=True)
    is_active = models.BooleanField(default=True)
    wix_app = models.ForeignKey(
        WixApp,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="tenants",
        verbose_name="Wix app",
    )
    instance_id = models.CharField(
        "app instance ID",
        max_length=64,
        blank=True,
        validators=[validate_guid],
        help_text="The Wix app's instance on this site (a GUID).",
    )
    api_key = EncryptedTextField("API key", blank=True, default="")
    credentials_status = models.CharField(
        choices=CredentialsStatus, default=CredentialsStatus.UNVERIFIED, max_length=16
    )
    credentials_checked_at = models.DateTimeField(null=True, blank=True)
    # Wix's error code and message from the last check; never a secret.
    credentials_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantQuerySet.as_manager()
    history = HistoricalRecords(excluded_fields=["api_key"])

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(wix_app__isnull=False) & ~Q(instance_id="") & Q(api_key=""))
                | (Q(wix_app__isnull=True) & Q(instance_id="") & ~Q(api_key="")),
                name="tenants_tenant_exactly_one_way_in",
                violation_error_message=(
                    "A tenant needs exactly one way in: "
                    "a Wix app with an app instance ID, or an API key."
                ),
            ),
            # An app instance is one site's: two tenants sharing one would mirror one site twice.
            models.UniqueConstraint(
                fields=["instance_id"],
                condition=~Q(instance_id=""),
                name="tenants_tenant_instance_unique",
                violation_error_message="Another tenant already uses this app instance.",
            ),
        ]
        permissions = [
            (
                "change_way_in",
                "Can change how a tenant reaches Wix (site, Wix app, app instance, API key)",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        # GUIDs that differ only in case are the same site or instance: stored lower-case,
        # whichever entry they came through.
        self.site_id = self.site_id.lower()
        self.instance_id = self.instance_id.lower()
        super().save(*args, **kwargs)

    @property
    def auth_method(self) -> AuthMethod | None:
        """Return how this tenant reaches Wix: "oauth_app", "api_key", or None if unset."""
        if self.wix_app_id is not None and self.instance_id:
            return AuthMethod.OAUTH_APP
        if self.api_key:
            return AuthMethod.API_KEY
        return None

    def clean(self):
        self.site_id = self.site_id.lower()
        self.instance_id = self.instance_id.lower()
        self._clean_site_change()
        self._clean_instance_unique()
        has_app = self.wix_app_id is not None
        has_instance = bool(self.instance_id)
        has_key = bool(self.api_key)
        errors = {}
        if has_key and (has_app or has_instance):
            errors["api_key"] = (
                "Use either a Wix app with an app instance ID, or an API key, not both."
            )
        elif has_app and not has_instance:
            errors["instance_id"] = "Enter the app instance ID for this Wix app."
        elif has_instance and not has_app:
            errors["wix_app"] = "Choose the Wix app this instance belongs to."
        elif not (has_key or has_app):
            errors["api_key"] = "Enter an API key, or choose a Wix app and an app instance ID."
        if errors:
            raise ValidationError(errors)

    def _clean_site_change(self) -> None:
        """Once the mirror holds rows of this tenant's site, the site is fixed: another site
        is another tenant (its rows would otherwise be shown as this one's)."""
        if self.pk is None:
            return
        stored = Tenant.objects.filter(pk=self.pk).values_list("site_id", flat=True).first()
        if stored is not None and stored != self.site_id and self.holds_mirror():
            raise ValidationError(
                {
                    "site_id": "This tenant already mirrors its site's connections, so its "
                    "site cannot change: add the other site as a new tenant."
                }
            )

    def _clean_instance_unique(self) -> None:
        if not self.instance_id:
            return
        others = Tenant.objects.filter(instance_id=self.instance_id).exclude(pk=self.pk)
        if others.exists():
            raise ValidationError({"instance_id": "Another tenant already uses this app instance."})

    def holds_mirror(self) -> bool:
        """Whether rows mirrored from this tenant's site exist.

        Mirror models live in an app above this one; they say so with a class attribute
        `mirrors_tenant_site = True` and a foreign key to Tenant, so none is imported here.
        """
        # Their reverse relations are hidden (related_name="+"), hence include_hidden.
        for relation in self._meta.get_fields(include_hidden=True):
            if not (relation.auto_created and relation.is_relation and not relation.concrete):
                continue
            model = relation.related_model
            if (
                getattr(model, "mirrors_tenant_site", False)
                and model._base_manager.filter(**{relation.field.name: self.pk}).exists()
            ):
                return True
        return False

    @property
    def credentials_readable(self) -> bool:
        """False when a stored secret (its API key or its Wix app's secret) cannot be decrypted."""
        app = self.wix_app
        return is_readable(self.api_key) and (app is None or is_readable(app.app_secret))

    def use_api_key(self, api_key: str) -> None:
        """Switch this tenant to `api_key`, dropping any Wix app; needs a new check."""
        self.api_key = api_key
        self.wix_app = None
        self.instance_id = ""
        self.mark_credentials_unverified()

    def use_wix_app(self, wix_app: WixApp, *, instance_id: str) -> None:
        """Switch this tenant to a Wix app instance, dropping any API key; needs a new check."""
        self.wix_app = wix_app
        self.instance_id = instance_id
        self.api_key = ""
        self.mark_credentials_unverified()

    def mark_credentials_unverified(self) -> None:
        self.credentials_status = CredentialsStatus.UNVERIFIED
        self.credentials_checked_at = None
        self.credentials_error = ""


class Role(models.TextChoices):
    VIEWER = "viewer", "Viewer (looks only)"
    OPERATOR = "operator", "Operator (may act)"


class TenantMembership(models.Model):
    """A staff user's access to one tenant; superusers need none to see every tenant."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="tenant_memberships"
    )
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role, default=Role.VIEWER)
    created_at = models.DateTimeField(auto_now_add=True)

    history = HistoricalRecords()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "tenant"], name="membership_unique")]
        ordering = ["tenant", "user"]

    def __str__(self) -> str:
        return f"{self.user} on {self.tenant} ({self.get_role_display()})"


class TenantOwnedQuerySet(models.QuerySet):
    """The one tenant scoping of every tenant-owned row: admin pages, API endpoints, filters
    and the dashboard all start from `visible_to(user)` or `operable_by(user)`."""

    def for_tenant(self, tenant: Tenant | int):
        return self.filter(tenant=tenant)

    def visible_to(self, user):
        """Rows of the tenants `user` may see (every row, for a superuser)."""
        ids = _tenant_ids(user, act=False)
        return self if ids is None else self.filter(tenant_id__in=ids)

    def operable_by(self, user):
        """Rows of the tenants `user` may act on."""
        ids = _tenant_ids(user, act=True)
        return self if ids is None else self.filter(tenant_id__in=ids)


class TenantOwned(models.Model):
    """A row that belongs to one tenant, and is seen and acted on through its scoping.

    Subclasses may redefine `tenant` (a nullable one, its own index) and extend the QuerySet.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")

    objects = TenantOwnedQuerySet.as_manager()

    class Meta:
        abstract = True


class Via(models.TextChoices):
    """Through what a person or program acted."""

    ADMIN = "admin", "Admin"
    API = "api", "API"
    COMMAND = "command", "Command"
    OAUTH_RETURN = "oauth-return", "OAuth return"


class AuditAction(models.TextChoices):
    """Every act the audit trail records, one name each whatever the interface."""

    # Tenants, their people, Wix apps and API tokens.
    CREATE_TENANT = "create_tenant", "Create tenant"
    UPDATE_TENANT = "update_tenant", "Update tenant"
    ACTIVATE_TENANT = "activate_tenant", "Activate tenant"
    DEACTIVATE_TENANT = "deactivate_tenant", "Deactivate tenant"
    VERIFY_CREDENTIALS = "verify_credentials", "Verify credentials"
    GRANT_ACCESS = "grant_access", "Grant access"
    CHANGE_ACCESS = "change_access", "Change access"
    REVOKE_ACCESS = "revoke_access", "Revoke access"
    CREATE_WIX_APP = "create_wix_app", "Create Wix app"
    UPDATE_WIX_APP = "update_wix_app", "Update Wix app"
    CREATE_API_TOKEN = "create_api_token", "Create API token"
    REVOKE_API_TOKEN = "revoke_api_token", "Revoke API token"
    ROTATE_ENCRYPTION_KEYS = "rotate_encryption_keys", "Re-encrypt secrets"
    # The mirror and the connections in Wix.
    QUEUE_REFRESH = "queue_refresh", "Queue refresh"
    REFRESH_TENANT = "refresh_tenant", "Refresh tenant now"
    REFRESH_CONNECTION = "refresh_connection", "Refresh connection"
    DISCONNECT = "disconnect", "Disconnect"
    SET_SYNC_CONFIG = "set_sync_config", "Set sync settings"
    START_OAUTH_CONNECT = "start_oauth_connect", "Start OAuth connect"
    COMPLETE_OAUTH_CONNECT = "complete_oauth_connect", "Complete OAuth connect"
    CONNECT_WITH_CREDENTIALS = "connect_with_credentials", "Connect with credentials"
    # Webhook endpoints (alerts): a user's own, so audited without a tenant.
    CREATE_WEBHOOK_ENDPOINT = "create_webhook_endpoint", "Create webhook endpoint"
    UPDATE_WEBHOOK_ENDPOINT = "update_webhook_endpoint", "Update webhook endpoint"
    DELETE_WEBHOOK_ENDPOINT = "delete_webhook_endpoint", "Delete webhook endpoint"
    ROTATE_WEBHOOK_SECRET = "rotate_webhook_secret", "Rotate webhook secret"
    SEND_TEST_WEBHOOK = "send_test_webhook", "Send test webhook"
    REPLAY_WEBHOOK_DELIVERY = "replay_webhook_delivery", "Replay webhook delivery"
    REPLAY_FAILED_WEBHOOKS = "replay_failed_webhooks", "Replay failed webhook deliveries"
    # A DENIED row names what was refused as "<model or route>.<action>" (tenant.change,
    # connection.disconnect), which is not one of these: refusals are of pages, not verbs.


class AuditOutcome(models.TextChoices):
    OK = "ok", "OK"
    FAILED = "failed", "Failed"
    DENIED = "denied", "Denied"
    QUEUED = "queued", "Queued"


class AuditEvent(TenantOwned):
    """Something a person or API client did: who, on which tenant and object, how it went.

    Written only by service functions (`tenants.audit.record`), in the transaction of what
    they changed. `parameters` (what was asked) and `changes` (field -> [old, new]) never hold
    a secret: a secret's change is recorded as "set", "replaced" or "removed".
    """

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Kept when the user is deleted, so the trail still says who it was.
    username = models.CharField(max_length=150, blank=True)
    tenant = models.ForeignKey(
        Tenant, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_events"
    )
    action = models.CharField(max_length=64, db_index=True, choices=AuditAction)
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=512, blank=True)
    target_repr = models.CharField(max_length=300, blank=True)
    parameters = models.JSONField(default=dict, blank=True)
    changes = models.JSONField(default=dict, blank=True)
    outcome = models.CharField(max_length=16, choices=AuditOutcome)
    error_code = models.CharField(max_length=100, blank=True)
    message = models.TextField(blank=True)
    wix_request_id = models.CharField(max_length=200, blank=True)
    via = models.CharField(max_length=16, choices=Via)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["tenant", "-created_at"], name="audit_tenant_recent")]

    def __str__(self) -> str:
        return f"{self.username or 'system'} {self.action} {self.target_repr} ({self.outcome})"
