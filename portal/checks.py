"""System checks for settings that must never reach production as their dev defaults."""

from django.conf import settings
from django.core.checks import Error, Warning, register


@register(deploy=True)
def check_secret_key(app_configs=None, **kwargs):
    """`check --deploy` refuses the placeholder SECRET_KEY while DEBUG is off."""
    if settings.DEBUG or settings.SECRET_KEY != settings.INSECURE_DEV_SECRET_KEY:
        return []
    return [
        Error(
            "SECRET_KEY is the development placeholder while DEBUG is off.",
            hint="Set SECRET_KEY in the environment (a long random string).",
            id="portal.E001",
        )
    ]


@register(deploy=True)
def check_celery_broker(app_configs=None, **kwargs):
    """Without a broker, refreshes and remote actions run inside the web request."""
    if settings.CELERY_BROKER_URL:
        return []
    return [
        Warning(
            "CELERY_BROKER_URL is unset: refreshes and remote actions run inside web "
            "requests and no beat schedule refreshes the tenants.",
            hint="Set CELERY_BROKER_URL to Redis (e.g. redis://host:6379/0) and run a "
            "Celery worker and exactly one beat process.",
            id="portal.W001",
        )
    ]


# Backends whose entries live in one process (or on one machine's disk, unlocked).
PROCESS_LOCAL_CACHES = {
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
    "django.core.cache.backends.filebased.FileBasedCache",
}


@register(deploy=True)
def check_shared_cache(app_configs=None, **kwargs):
    """The refresh lock, the per-site request budget and the API throttle live in the cache:
    a process-local one gives each worker its own, and together they exceed every limit."""
    backend = settings.CACHES.get("default", {}).get("BACKEND", "")
    if backend not in PROCESS_LOCAL_CACHES:
        return []
    return [
        Warning(
            f"The default cache is {backend.rsplit('.', 1)[-1]}, local to each process: "
            "refresh locks, Wix request budgets and API throttles are not shared between "
            "workers.",
            hint="Set CACHE_URL to Redis (e.g. rediscache://host:6379/1).",
            id="portal.W002",
        )
    ]


@register(deploy=True)
def check_email(app_configs=None, **kwargs):
    """Without EMAIL_URL, every email the portal writes stays in the admin's outbox."""
    if settings.EMAIL_BACKEND != settings.OUTBOX_EMAIL_BACKEND:
        return []
    return [
        Warning(
            "EMAIL_URL is unset: the portal's emails are kept in the admin's outbox and none "
            "is sent (webhook endpoints' owners are not told when an endpoint is turned off).",
            hint="Set EMAIL_URL (e.g. smtp+tls://user:password@smtp.example.com:587) and "
            "DEFAULT_FROM_EMAIL.",
            id="portal.W003",
        )
    ]
