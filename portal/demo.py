"""Demo wiring: tenants for a freshly seeded sandbox, and an admin login.

The sandbox generates new secrets every time it starts, so every demo run stores them
again (encrypted) on the same tenants, found by site id.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import transaction

from tenants.models import Tenant, WixApp
from wixapi.sandbox import Credentials

DEMO_APP_NAME = "Demo agency app (sandbox)"
DEMO_NOTE = "Demo tenant: a site of the local Wix sandbox."
# Seeds the sandbox's ids (never its secrets), so every demo run finds the same sites.
DEMO_SEED = 2026


@dataclass(frozen=True)
class DemoLogin:
    username: str
    password: str


@transaction.atomic
def install_demo_tenants(demo: Credentials) -> list[Tenant]:
    """Create or update the WixApp and one tenant per site of `seed_demo`; return them."""
    app = None
    if getattr(demo, "app_id", None):
        app, _ = WixApp.objects.update_or_create(
            app_id=demo.app_id, defaults={"name": DEMO_APP_NAME, "app_secret": demo.app_secret}
        )
    tenants = []
    for site in demo.sites:
        uses_app = bool(site.instance_id)
        tenant, _ = Tenant.objects.update_or_create(
            site_id=site.site_id,
            defaults={
                "name": site.name,
                "notes": DEMO_NOTE,
                "is_active": True,
                "wix_app": app if uses_app else None,
                "instance_id": site.instance_id or "",
                "api_key": "" if uses_app else site.api_key,
            },
        )
        tenants.append(tenant)
    return tenants


def ensure_admin(*, username: str = "admin", password: str | None = None) -> DemoLogin:
    """Create (or reset the password of) a superuser for the demo; return the login."""
    password = password or secrets.token_urlsafe(9)
    user_model = get_user_model()
    user, _ = user_model.objects.get_or_create(
        username=username, defaults={"email": f"{username}@example.com"}
    )
    user.is_staff = user.is_superuser = user.is_active = True
    user.set_password(password)
    user.save()
    return DemoLogin(username=username, password=password)
