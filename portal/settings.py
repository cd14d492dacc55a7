"""Settings for the Wix Calendar Connections Portal.

Every value comes from the environment (or a `.env` file beside manage.py) through
django-environ. Defaults are safe for development: SQLite, tasks run in-process, Wix at
its real host. See the configuration table in README.md.
"""

from datetime import timedelta
from pathlib import Path

import environ
from csp.constants import NONCE, NONE, SELF, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# Only ever used when SECRET_KEY is unset; `check --deploy` refuses it (portal/checks.py).
INSECURE_DEV_SECRET_KEY = "insecure-dev-only-secret-key-change-me"

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default=INSECURE_DEV_SECRET_KEY)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "portal.apps.PortalAdminConfig",  # django.contrib.admin with the portal's site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "knox",
    "simple_history",
    "django_celery_beat",
    "django_celery_results",
    "drf_spectacular_sidecar",  # Swagger UI's files, served by the portal (no CDN)
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",  # recovery codes
    "csp",
    "portal",
    "tenants",
    "connections",
    "alerts",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",  # request.user.is_verified()
    "portal.two_factor.TwoFactorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    # Last, as django-axes requires: it turns a flagged lockout into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASE_ENGINES = ("django.db.backends.sqlite3", "django.db.backends.postgresql")


def database_from_env() -> dict:
    """DATABASE_URL as Django's DATABASES entry; a URL of another kind is refused in one line
    that never quotes it (it may hold a password)."""
    try:
        database = env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
    except (ValueError, KeyError):
        database = {}
    if database.get("ENGINE") not in DATABASE_ENGINES:
        raise ImproperlyConfigured(
            "DATABASE_URL must be sqlite:///path/to/file or postgres://user:password@host:port/name."
        )
    return database


DATABASES = {"default": database_from_env()}
# Connections outlive a request or a task (Celery's Django fixup closes them only once this
# old): a worker refreshing tenant after tenant reuses one, and its prepared statements,
# instead of opening a connection per task. Checked before reuse, so a dropped one is
# replaced rather than failing a request.
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Concurrent refreshes (worker threads) each take the write lock when their
    # transaction starts and wait for it, instead of failing with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"transaction_mode": "IMMEDIATE", "timeout": 30}
    )
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Parameters go apart from the SQL, and psycopg prepares a statement once a connection
    # has run it 5 times (its prepare_threshold, which Django sets to None, "never", unless
    # asked): PostgreSQL then parses and plans a refresh's few statements once per
    # connection, not once per tenant. Together they more than halved PostgreSQL's CPU in a
    # fleet refresh (bench/refresh.py). Behind PgBouncer in transaction mode, prepared
    # statements need PgBouncer 1.21 or newer with max_prepared_statements set; or set
    # DATABASE_SERVER_SIDE_BINDING=false, which turns both off.
    options = DATABASES["default"].setdefault("OPTIONS", {})
    options.setdefault(
        "server_side_binding", env.bool("DATABASE_SERVER_SIDE_BINDING", default=True)
    )
    if options["server_side_binding"]:
        options.setdefault("prepare_threshold", 5)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# django-axes' backend first: it refuses a locked-out username and address before any
# password is checked. The API authenticates with tokens, never through these backends.
AUTHENTICATION_BACKENDS = [
    "portal.lockout.LockoutBackend",
    "django.contrib.auth.backends.ModelBackend",
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# --- Secrets at rest -------------------------------------------------------------------
# Comma-separated Fernet keys: the first encrypts, every one decrypts (key rotation).
# Unset, a key derived from SECRET_KEY is used and a system check says so.
PORTAL_ENCRYPTION_KEYS = env.list("PORTAL_ENCRYPTION_KEYS", default=[])

# --- HTTPS -----------------------------------------------------------------------------
# Off by default so development and the tests run over plain HTTP; production turns them
# on (README, Production). SECURE_PROXY_SSL_HEADER is "HEADER,value" as the TLS proxy sets
# it, e.g. HTTP_X_FORWARDED_PROTO,https; only behind a proxy that overwrites that header.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=False)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=False)
SECURE_PROXY_SSL_HEADER = tuple(env.list("SECURE_PROXY_SSL_HEADER", default=[])) or None

# --- Admin login -----------------------------------------------------------------------
# django-axes: after AXES_FAILURE_LIMIT failed logins for one username from one address,
# that pair is refused for AXES_COOLOFF_TIME hours, or until a superuser deletes its
# access attempt in the admin. Attempts live in the database, shared by every process.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(hours=env.float("AXES_COOLOFF_TIME", default=1.0))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# No start-up banner on every command; attempts and lockouts are still recorded.
AXES_VERBOSE = False
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_LOCKOUT_CALLABLE = "portal.lockout.lockout_response"
# Failed attempts store the POSTed form; the second factor's code is masked like the password.
AXES_SENSITIVE_PARAMETERS = ["username", "ip_address", "otp_token"]
# Behind N proxies, the client's address is the Nth from the right of X-Forwarded-For;
# 0 (direct connections) uses REMOTE_ADDR only, which a client cannot forge.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
AXES_CLIENT_IP_CALLABLE = "portal.lockout.client_ip"

# django-otp: staff may add a TOTP app as a second factor (admin, "Two-factor
# authentication"); PORTAL_REQUIRE_2FA makes it compulsory for every staff user.
PORTAL_REQUIRE_2FA = env.bool("PORTAL_REQUIRE_2FA", default=False)
OTP_TOTP_ISSUER = "Calendar Connections Portal"
# Keys and recovery codes are never shown in the admin's device pages.
OTP_ADMIN_HIDE_SENSITIVE_DATA = True

# --- Wix -------------------------------------------------------------------------------
WIX_API_BASE_URL = env.str("WIX_API_BASE_URL", default="https://www.wixapis.com")
WIX_TIMEOUT_SECONDS = env.float("WIX_TIMEOUT_SECONDS", default=10.0)
WIX_CONNECT_TIMEOUT_SECONDS = env.float("WIX_CONNECT_TIMEOUT_SECONDS", default=3.05)
WIX_MAX_RETRIES = env.int("WIX_MAX_RETRIES", default=3)
WIX_BACKOFF_SECONDS = env.float("WIX_BACKOFF_SECONDS", default=0.5)
WIX_RETRY_AFTER_MAX_SECONDS = env.int("WIX_RETRY_AFTER_MAX_SECONDS", default=30)

# --- Mirror refreshes -------------------------------------------------------------------
# The beat schedule created by the connections migrations (editable in the admin).
REFRESH_INTERVAL_MINUTES = env.int("REFRESH_INTERVAL_MINUTES", default=15)
# A refresh takes its tenant's lock for this long and renews it every third of that while
# it runs: a killed worker's lock expires within this, and its tenant refreshes again.
REFRESH_LOCK_SECONDS = env.int("REFRESH_LOCK_SECONDS", default=60)
# A worker stops a refresh after this (hard limit; the soft limit, 30 s earlier, lets the
# refresh record its failure). The prefork pool enforces limits, the threads pool cannot.
REFRESH_TIME_LIMIT_SECONDS = env.int("REFRESH_TIME_LIMIT_SECONDS", default=300)
# A queued refresh not finished after this no longer blocks queueing another: its message
# may have been lost (a Redis without persistence restarted).
REFRESH_PENDING_SECONDS = env.int("REFRESH_PENDING_SECONDS", default=600)
# Requests per site per minute, shared by every worker through the cache (Redis in
# production): below Wix's 200 per minute per app instance.
WIX_SITE_REQUESTS_PER_MINUTE = env.int("WIX_SITE_REQUESTS_PER_MINUTE", default=180)
# First wait before a refresh that met a busy or unavailable Wix is tried again (doubles).
REFRESH_RETRY_BACKOFF_SECONDS = env.float("REFRESH_RETRY_BACKOFF_SECONDS", default=30)

# --- Issues ------------------------------------------------------------------------------
# A connection CONNECTED or SYNC_IN_PROGRESS this long without reaching SYNCED is stuck.
ISSUE_STUCK_HOURS = env.float("ISSUE_STUCK_HOURS", default=6)
# Failed refreshes of a tenant in a row that open its "refresh failing" issue.
ISSUE_REFRESH_FAILURES = env.int("ISSUE_REFRESH_FAILURES", default=3)
# The same problem returning this soon after its issue resolved reopens that issue.
ISSUE_REOPEN_HOURS = env.float("ISSUE_REOPEN_HOURS", default=24)

# --- Webhooks ----------------------------------------------------------------------------
# Hosts (names or addresses, exactly) that webhooks may reach over http:// and at any
# address; every other URL must be https:// to public addresses (alerts/webhooks/guard.py).
# Empty in production; the demo and the tests allow 127.0.0.1.
WEBHOOK_ALLOW_HOSTS = env.list("WEBHOOK_ALLOW_HOSTS", default=[])
# How long an attempt waits to connect (at most 5 s) and for the answer.
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=15.0)
# Waits before each retry of a failed delivery, then it has failed: 5 s, 5 min, 30 min, 2 h,
# 5 h, 10 h, 10 h. Each is stretched or shortened by up to WEBHOOK_RETRY_JITTER (a share).
WEBHOOK_RETRY_SCHEDULE_SECONDS = env.list(
    "WEBHOOK_RETRY_SCHEDULE_SECONDS", cast=int, default=[5, 300, 1800, 7200, 18000, 36000, 36000]
)
WEBHOOK_RETRY_JITTER = env.float("WEBHOOK_RETRY_JITTER", default=0.1)
# A 429 or 503 with Retry-After waits that long (if longer than the schedule), capped here.
WEBHOOK_RETRY_AFTER_MAX_SECONDS = env.int("WEBHOOK_RETRY_AFTER_MAX_SECONDS", default=36000)
# A worker holds a delivery this long while it sends; one that died lets it go after this.
# Longer than the connect and read timeouts together.
WEBHOOK_LEASE_SECONDS = env.int("WEBHOOK_LEASE_SECONDS", default=120)
# An endpoint with only failed attempts for this long is turned off and its owner emailed.
WEBHOOK_DISABLE_AFTER_DAYS = env.float("WEBHOOK_DISABLE_AFTER_DAYS", default=5)
# Attempts one process sends at once (each thread its own HTTP session).
WEBHOOK_SENDER_THREADS = env.int("WEBHOOK_SENDER_THREADS", default=8)
# The beat sweep that sends due retries (created by alerts/migrations, editable in the admin).
WEBHOOK_SWEEP_SECONDS = env.int("WEBHOOK_SWEEP_SECONDS", default=5)

# --- Celery ----------------------------------------------------------------------------
# Without a broker, tasks run in-process (eagerly), so the demo needs no Redis.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = "django-db"
CELERY_RESULT_EXTENDED = True
# Jobs queued through the API are looked up by id, also when they ran in-process.
CELERY_TASK_STORE_EAGER_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ANNOTATIONS = {
    "connections.tasks.refresh_tenant": {
        "soft_time_limit": max(REFRESH_TIME_LIMIT_SECONDS - 30, 1),
        "time_limit": REFRESH_TIME_LIMIT_SECONDS,
    },
}
# Redis hands a message a worker took but never acknowledged (the worker was killed) to
# another after this, instead of its one hour default. It must outlast a refresh waiting
# for its last retry (the worker holds it meanwhile: 4x the first backoff, at most 600 s)
# and then running to its time limit, or a live worker's refresh would be handed out twice.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": int(
        REFRESH_TIME_LIMIT_SECONDS + min(4 * REFRESH_RETRY_BACKOFF_SECONDS, 600) + 60
    ),
}

# --- Cache -----------------------------------------------------------------------------
CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}
if CACHES["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache":
    # Passed to redis-py's connection pool. A Redis that is down or unreachable then fails
    # a cache call within a second instead of hanging the request: the API throttle and
    # the request budget let it through, refresh locks answer 503 (the lock is unavailable).
    cache_options = CACHES["default"].setdefault("OPTIONS", {})
    for option in ("socket_connect_timeout", "socket_timeout"):
        cache_options.setdefault(option, env.float("CACHE_TIMEOUT_SECONDS", default=1.0))

# --- DRF -------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # knox's, refusing tokens of users no longer staff or active, and throttling refusals.
        "portal.api.authentication.TokenAuthentication",
        # The browsable API and Swagger UI work with an admin login.
        "rest_framework.authentication.SessionAuthentication",
    ],
    # JSON that nests too deeply for Python's parser is a 400, not a RecursionError.
    "DEFAULT_PARSER_CLASSES": [
        "portal.api.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    # Throttles first: a request refused with 401 or 403 counts too (portal/api/throttling.py).
    "DEFAULT_PERMISSION_CLASSES": [
        "portal.api.throttling.ThrottledFirst",
        "portal.api.permissions.HasTenantAccess",
    ],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "portal.api.schema.PortalAutoSchema",
    "EXCEPTION_HANDLER": "portal.api.errors.handle_exception",
    "DEFAULT_THROTTLE_CLASSES": [
        "portal.api.throttling.TokenRateThrottle",
        "portal.api.throttling.AnonRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "token": env.str("API_THROTTLE_RATE", default="600/min"),
        # Requests without valid credentials, per client address.
        "anon": env.str("API_ANON_THROTTLE_RATE", default="60/min"),
    },
    # Proxies in front of the portal that append the client's address to X-Forwarded-For
    # (the same count as the admin's login lockout); 0 takes REMOTE_ADDR, which a client
    # cannot forge (DRF's default, None, trusts the whole header).
    "NUM_PROXIES": env.int("TRUSTED_PROXY_COUNT", default=0),
    "DEFAULT_PAGINATION_CLASS": "portal.api.pagination.CursorPage",
    "PAGE_SIZE": 100,
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
# /healthz (portal.health), per client address: an uptime monitor polls it once a minute or so.
HEALTH_THROTTLE_RATE = env.str("HEALTH_THROTTLE_RATE", default="60/min")
# /metrics (portal.metrics): unset, the endpoint is off (404); set, Prometheus sends it as a
# bearer token. Per-tenant series only when METRICS_TENANT_LABELS is true (unbounded labels).
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_THROTTLE_RATE = env.str("METRICS_THROTTLE_RATE", default="60/min")
METRICS_TENANT_LABELS = env.bool("METRICS_TENANT_LABELS", default=False)
REST_KNOX = {
    # Tokens expire; `create_api_token --expiry DAYS` sets another lifetime per token.
    "TOKEN_TTL": timedelta(days=env.int("API_TOKEN_DAYS", default=90)),
    "AUTH_HEADER_PREFIX": "Token",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Wix Calendar Connections Portal API",
    "DESCRIPTION": "Tenants, mirrored calendar connections and the actions on them, scoped "
    "to the tenants of the token's user. Authenticate with `Authorization: Token <token>`.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
}

# --- Content-Security-Policy -----------------------------------------------------------
# Swagger UI and Redoc come from drf-spectacular-sidecar, served with the static files,
# never from a CDN.
SPECTACULAR_SETTINGS |= {
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}
# Scripts: the portal's own files and inline scripts carrying the request's nonce
# ({{ request.csp_nonce }}); portal/tests/test_csp_browser.py fails when a template's inline
# script has none. Never 'unsafe-inline' for scripts, and no inline event handlers.
# Styles allow inline <style> and style="": the portal's admin templates, the browsable
# API's and Swagger UI's use them (the latter two are not ours to change), and a style runs
# no script. A nonce in style-src would make browsers ignore 'unsafe-inline', so none there.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, UNSAFE_INLINE],
        # data: for the SVG icons Swagger UI and the admin draw from CSS.
        "img-src": [SELF, "data:"],
        "object-src": [NONE],
        "base-uri": [SELF],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
    },
}

# --- Email ------------------------------------------------------------------------------
OUTBOX_EMAIL_BACKEND = "alerts.mail.OutboxBackend"
SMTP_EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"


def email_from_env() -> dict:
    """EMAIL_URL as Django's EMAIL_* settings (smtp://, smtp+tls:// for STARTTLS, smtp+ssl://,
    or django-environ's consolemail://); unset, mail goes to the outbox in the admin. A bad
    URL is refused in one line that never quotes it (it holds a password)."""
    url = env.str("EMAIL_URL", default="")
    if not url:
        return {"EMAIL_BACKEND": OUTBOX_EMAIL_BACKEND}
    try:
        config = environ.Env.email_url_config(url)
    except (ImproperlyConfigured, ValueError, KeyError):
        config = {}
    backend = config.get("EMAIL_BACKEND")
    if not backend or (backend == SMTP_EMAIL_BACKEND and not config.get("EMAIL_HOST")):
        raise ImproperlyConfigured(
            "EMAIL_URL must be smtp://user:password@host:port (or smtp+tls://, smtp+ssl://)."
        )
    config.pop("OPTIONS", None)
    config.pop("EMAIL_FILE_PATH", None)
    if config.get("EMAIL_PORT") is None:
        config.pop("EMAIL_PORT", None)
    return config


globals().update(email_from_env())
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="portal@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Django's default is to wait for an SMTP server forever.
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT_SECONDS", default=10)

# --- Logging ---------------------------------------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {"console": {"class": "portal.logs.ConsoleHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # requests' connection pool logs full URLs at DEBUG; keep it quiet.
        "urllib3": {"level": "WARNING"},
    },
}
