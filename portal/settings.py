"""Settings for the egress exemption portal.

One module, driven by environment variables. The defaults are for development and just work:
SQLite under var/, the console email backend, DEBUG on. Production sets DEBUG=0 and then must
provide SECRET_KEY and ALLOWED_HOSTS (see README.md, "Configuration").
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
import django_stubs_ext
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

# Makes generic classes such as admin.ModelAdmin[Tenant] subscriptable at run time.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent

DEV_SECRET_KEY = "dev-only-insecure-secret-key-do-not-use-in-production"  # noqa: S105


def envbool(name: str, default: str) -> bool:
    return os.environ.get(name, default).strip().lower() in ("1", "true", "yes", "on")


def envint(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, got {value!r}") from None


def envlist(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = envbool("DEBUG", "True")

SECRET_KEY = os.environ.get("SECRET_KEY", DEV_SECRET_KEY)
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS")

if not DEBUG:
    # Refuse to start rather than run production on a guessable key or an open Host header.
    if SECRET_KEY == DEV_SECRET_KEY or len(SECRET_KEY) < 50:
        raise ImproperlyConfigured(
            "SECRET_KEY must be set to a random string of 50 or more characters when DEBUG is off "
            "(generate one with: python -c 'import secrets; print(secrets.token_urlsafe(50))')"
        )
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured(
            "ALLOWED_HOSTS must list the host names the portal is served under when DEBUG is off "
            "(comma-separated, e.g. ALLOWED_HOSTS=portal.example.net)"
        )

SITE_NAME = os.environ.get("SITE_NAME", "Egress Exemption Portal")
SITE_URL = os.environ.get("SITE_URL", "http://127.0.0.1:8000").rstrip("/")
ACCEPTABLE_USE_URL = os.environ.get("ACCEPTABLE_USE_URL", "")

INSTALLED_APPS = [
    "portal.apps.PortalAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    # GinIndex and the trigram extension of the queue search (PostgreSQL only; inert on SQLite).
    "django.contrib.postgres",
    "django_htmx",
    "rest_framework",
    "drf_spectacular",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "portal.core",
    "portal.ops",
    "portal.audit",
    "portal.accounts",
    "portal.unblock",
    "portal.review",
    "portal.vetting",
    "portal.reputation",
    "portal.telemetry",
    "portal.enforcement",
    "portal.notifications",
]
if DEBUG:
    # Demo data and the demo DNS server (`make demo`): never part of a production deployment.
    INSTALLED_APPS.append("portal.demo")

MIDDLEWARE = [
    # First, so that API errors raised by any other middleware still come back as JSON.
    "portal.ops.api_middleware.ApiErrorMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "portal.core.middleware.RequestIdMiddleware",
    "portal.core.replica.ReplicaReadsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, so that it sees the outcome of authentication (django-axes requirement).
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
                "portal.accounts.context_processors.branding",
            ],
        },
    },
]

# Database: SQLite under var/ unless DATABASE_URL points elsewhere (postgres://user@host/db).
(BASE_DIR / "var" / "static").mkdir(parents=True, exist_ok=True)
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'var' / 'portal.sqlite3'}"),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    if envbool("DB_POOL", "False"):
        # psycopg's pool replaces persistent connections; the two can't be combined.
        DATABASES["default"]["CONN_MAX_AGE"] = 0
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": envint("DB_POOL_MIN_SIZE", 2),
            "max_size": envint("DB_POOL_MAX_SIZE", 10),
        }
    else:
        DATABASES["default"]["CONN_MAX_AGE"] = envint("DB_CONN_MAX_AGE", 60)
else:
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"transaction_mode": "IMMEDIATE", "timeout": 20, "init_command": "PRAGMA journal_mode=WAL;"}
    )
DATABASES["default"].setdefault("TEST", {})["NAME"] = os.environ.get("TEST_DATABASE_NAME") or None
# A read replica for the feeds' and the review queue's GET requests (portal/core/replica.py);
# everything that must be fresh reads the primary. Tests read the primary under this name.
DATABASE_REPLICA_URL = os.environ.get("DATABASE_REPLICA_URL", "")
if DATABASE_REPLICA_URL:
    DATABASES["replica"] = {
        **DATABASES["default"],
        **dj_database_url.parse(DATABASE_REPLICA_URL, conn_health_checks=True),
        "TEST": {"MIRROR": "default"},
    }
DATABASE_ROUTERS = ["portal.core.replica.ReplicaRouter"]
REPLICA_READ_PATHS = envlist("REPLICA_READ_PATHS", "/api/v1/feeds/,/review/")
# How long a browser reads the primary after changing something (longer than the replica lag).
REPLICA_PIN_SECONDS = envint("REPLICA_PIN_SECONDS", 10)

# Nothing shared lives in the default cache (the /metrics counters are in the database).
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    # API throttles: shared by every process through the database (a core migration creates it).
    "throttle": {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "portal_throttle_cache",
    },
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Brute-force protection: lock a username+address pair after repeated failures.
AXES_FAILURE_LIMIT = envint("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = envint("LOGIN_COOLOFF_MINUTES", 15) / 60
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_ENABLED = envbool("LOGIN_LOCKOUT_ENABLED", "True")
AXES_IPWARE_PROXY_COUNT = envint("TRUSTED_PROXY_COUNT", 0) or None

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "var" / "static"
# Where the worker stores built feed snapshots (the "feeds" storage below).
FEED_STORAGE_DIR = Path(os.environ.get("FEED_STORAGE_DIR", "") or BASE_DIR / "var" / "feeds")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "feeds": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": FEED_STORAGE_DIR},
    },
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# Email: console in development; SMTP when EMAIL_HOST is set.
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "portal@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
if os.environ.get("EMAIL_HOST"):
    MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {
                "host": os.environ["EMAIL_HOST"],
                "port": envint("EMAIL_PORT", 587),
                "username": os.environ.get("EMAIL_HOST_USER", ""),
                "password": os.environ.get("EMAIL_HOST_PASSWORD", ""),
                "use_tls": envbool("EMAIL_USE_TLS", "True"),
                "timeout": 15,
            },
        }
    }
else:
    MAILERS = {"default": {"BACKEND": "django.core.mail.backends.console.EmailBackend"}}

# Security headers. The CSP allows no inline script anywhere; htmx is configured to add no
# inline styles (see templates/base.html).
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "frame-ancestors": [CSP.NONE],
    "form-action": [CSP.SELF],
}
if not DEBUG:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", "True")
    SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("SECURE_HSTS_INCLUDE_SUBDOMAINS", "True")
    SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", "False")
    if not SECURE_HSTS_PRELOAD:
        # Preloading is hard to undo; it is the operator's decision, not a default.
        SILENCED_SYSTEM_CHECKS = ["security.W021"]
    if envbool("BEHIND_TLS_PROXY", "False"):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_NAME = "__Host-sessionid"
    CSRF_COOKIE_NAME = "__Host-csrftoken"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["portal.accounts.api_auth.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["portal.ops.parsers.BoundedJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "portal.ops.api_errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_THROTTLE_CLASSES": ["portal.accounts.throttles.ApiKeyRateThrottle"],
    # The client address behind TRUSTED_PROXY_COUNT proxies, as the sign-in lockout sees it.
    "NUM_PROXIES": envint("TRUSTED_PROXY_COUNT", 0) or None,
}
# Rates as DRF writes them ("N/s", "N/min", "N/hour"); empty switches the throttle off.
API_THROTTLE_KEY_RATE = os.environ.get("API_THROTTLE_KEY_RATE", "3000/min")
API_THROTTLE_FAILED_AUTH_RATE = os.environ.get("API_THROTTLE_FAILED_AUTH_RATE", "30/min")
SPECTACULAR_SETTINGS = {
    "TITLE": "Egress Exemption Portal API",
    "DESCRIPTION": "Port-25 unblock requests, tenant provisioning and enforcement feeds.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "portal.ops.api_schema.add_error_responses",
    ],
    # Models share field names (`kind`, `state`) with different choices; name each enum readably.
    "ENUM_NAME_OVERRIDES": {
        "MessageKindEnum": "portal.unblock.models.MessageKind",
        "EventKindEnum": "portal.reputation.models.Kind",
        "RequestStateEnum": "portal.unblock.models.State",
        "ReputationSourceEnum": "portal.reputation.models.Source",
    },
}

# Unblock request rules.
# The largest block one request may name, as a prefix length: /28 means up to 16 addresses.
MAX_BLOCK_V4 = envint("MAX_BLOCK_V4", 28)
MAX_BLOCK_V6 = envint("MAX_BLOCK_V6", 64)
MAX_ADDRESSES_PER_REQUEST = envint("MAX_ADDRESSES_PER_REQUEST", 16)

# Background worker.
WORKER_POLL_SECONDS = float(os.environ.get("WORKER_POLL_SECONDS", "2"))
WORKER_LEASE_SECONDS = envint("WORKER_LEASE_SECONDS", 120)
EMAIL_MAX_ATTEMPTS = envint("EMAIL_MAX_ATTEMPTS", 8)

EXEMPTION_DEFAULT_DAYS = envint("EXEMPTION_DEFAULT_DAYS", 365)

# DNS for the automated checks. Empty DNS_NAMESERVERS uses the system resolver; Spamhaus refuses
# queries that arrive through public resolvers, so production points this at its own resolver.
DNS_NAMESERVERS = envlist("DNS_NAMESERVERS")
DNS_PORT = envint("DNS_PORT", 53)
DNS_TIMEOUT = float(os.environ.get("DNS_TIMEOUT", "3"))
DNSBL_ZONE = os.environ.get("DNSBL_ZONE", "zen.spamhaus.org")
DBL_ZONE = os.environ.get("DBL_ZONE", "dbl.spamhaus.org")
DNSBL_EXTRA_ZONES = envlist("DNSBL_EXTRA_ZONES")
SPAMHAUS_DQS_KEY = os.environ.get("SPAMHAUS_DQS_KEY", "")

# Vetting thresholds and the risk policy.
VETTING_MIN_ACCOUNT_AGE_DAYS = envint("VETTING_MIN_ACCOUNT_AGE_DAYS", 30)
VETTING_MIN_PAID_INVOICES = envint("VETTING_MIN_PAID_INVOICES", 1)
VETTING_REQUIRE_IDENTITY = envbool("VETTING_REQUIRE_IDENTITY", "True")
VETTING_MAX_ADDRESSES_PER_BLOCK = envint("VETTING_MAX_ADDRESSES_PER_BLOCK", 256)
VETTING_CONCURRENCY = envint("VETTING_CONCURRENCY", 64)
REPUTATION_WINDOW_DAYS = envint("REPUTATION_WINDOW_DAYS", 180)
RISK_BAND_MEDIUM = envint("RISK_BAND_MEDIUM", 20)
RISK_BAND_HIGH = envint("RISK_BAND_HIGH", 50)
AUTO_DENY_ENABLED = envbool("AUTO_DENY_ENABLED", "True")
AUTO_APPROVE_ENABLED = envbool("AUTO_APPROVE_ENABLED", "False")
AUTO_APPROVE_MIN_ACCOUNT_AGE_DAYS = envint("AUTO_APPROVE_MIN_ACCOUNT_AGE_DAYS", 180)
AUTO_APPROVE_MIN_PAID_INVOICES = envint("AUTO_APPROVE_MIN_PAID_INVOICES", 6)
LOOKUP_LINKS = {
    "Spamhaus": os.environ.get("LOOKUP_URL_SPAMHAUS", "https://check.spamhaus.org/results/?query={ip}"),
    "Talos": os.environ.get(
        "LOOKUP_URL_TALOS", "https://www.talosintelligence.com/reputation_center/lookup?search={ip}"
    ),
    "AbuseIPDB": os.environ.get("LOOKUP_URL_ABUSEIPDB", "https://www.abuseipdb.com/check/{ip}"),
    "MXToolbox": os.environ.get(
        "LOOKUP_URL_MXTOOLBOX", "https://mxtoolbox.com/SuperTool.aspx?action=blacklist%3a{ip}"
    ),
}

# Review: the time a request may wait, and when two people must approve (four-eyes).
REVIEW_SLA_HOURS = envint("REVIEW_SLA_HOURS", 24)
FOUR_EYES_RISK_BANDS = envlist("FOUR_EYES_RISK_BANDS", "high")
FOUR_EYES_FOR_BLOCKS = envbool("FOUR_EYES_FOR_BLOCKS", "True")
FOUR_EYES_TENANT_MIN_AGE_DAYS = envint("FOUR_EYES_TENANT_MIN_AGE_DAYS", 90)

# Two-factor authentication with an authenticator app (TOTP, django-otp): anyone may turn it on;
# REQUIRE_STAFF_2FA makes staff pages and the admin ask for it.
REQUIRE_STAFF_2FA = envbool("REQUIRE_STAFF_2FA", "False")
OTP_TOTP_ISSUER = SITE_NAME
# After n wrong codes in a row a device refuses every code for 2^(n-1) seconds.
OTP_TOTP_THROTTLE_FACTOR = 1
# Admins may remove someone's device (a lost phone) but never see its secret.
OTP_ADMIN_HIDE_SENSITIVE_DATA = True


# Single sign-on (OpenID Connect, portal/accounts/sso*.py): one configuration for customers, one
# for staff, each on when its issuer is set; both may name the same issuer with their own client.
def sso_config(prefix: str, name: str, *, require_mfa: str) -> dict[str, object] | None:
    issuer = os.environ.get(f"{prefix}_ISSUER", "").strip().rstrip("/")
    if not issuer:
        return None
    return {
        "issuer": issuer,
        "name": os.environ.get(f"{prefix}_NAME", name),
        "client_id": os.environ.get(f"{prefix}_CLIENT_ID", ""),
        "client_secret": os.environ.get(f"{prefix}_CLIENT_SECRET", ""),
        "scopes": os.environ.get(f"{prefix}_SCOPES", "openid email profile"),
        "email_claim": os.environ.get(f"{prefix}_EMAIL_CLAIM", "email"),
        "tenant_claim": os.environ.get(f"{prefix}_TENANT_CLAIM", "tenants"),
        "groups_claim": os.environ.get(f"{prefix}_GROUPS_CLAIM", "groups"),
        "role_map": dict(item.split("=", 1) for item in envlist(f"{prefix}_ROLE_MAP") if "=" in item),
        "require_mfa": envbool(f"{prefix}_REQUIRE_MFA", require_mfa),
        "mfa_amr": envlist(f"{prefix}_MFA_AMR", "mfa"),
        "mfa_acr": envlist(f"{prefix}_MFA_ACR"),
    }


SSO_CUSTOMERS = sso_config("SSO_CUSTOMERS", "your provider account", require_mfa="False")
SSO_STAFF = sso_config("SSO_STAFF", "company sign-in", require_mfa="True")
SSO_CLOCK_SKEW_SECONDS = min(envint("SSO_CLOCK_SKEW_SECONDS", 60), 300)
SSO_JWKS_CACHE_SECONDS = envint("SSO_JWKS_CACHE_SECONDS", 3600)
# A token with an unknown key id refetches the keys (rotation), but not more often than this.
SSO_JWKS_MIN_REFETCH_SECONDS = envint("SSO_JWKS_MIN_REFETCH_SECONDS", 5)
SSO_HTTP_TIMEOUT = envint("SSO_HTTP_TIMEOUT", 10)
# LOCAL_LOGIN=off turns passwords off for everyone but the break-glass admin (by email).
LOCAL_LOGIN = envbool("LOCAL_LOGIN", "on")
BREAK_GLASS_ADMIN = os.environ.get("BREAK_GLASS_ADMIN", "").strip().lower()

# Webhooks (Standard Webhooks). Private targets need their network allow-listed (SSRF).
WEBHOOK_ALLOWED_NETWORKS = envlist("WEBHOOK_ALLOWED_NETWORKS")
WEBHOOK_ALLOW_HTTP = envbool("WEBHOOK_ALLOW_HTTP", "False")
WEBHOOK_CONNECT_TIMEOUT = float(os.environ.get("WEBHOOK_CONNECT_TIMEOUT", "5"))
WEBHOOK_TIMEOUT = float(os.environ.get("WEBHOOK_TIMEOUT", "15"))
WEBHOOK_CONCURRENCY = envint("WEBHOOK_CONCURRENCY", 8)
# Messages a worker claims at once; each endpoint's share is sent in order on one connection.
WEBHOOK_BATCH_SIZE = envint("WEBHOOK_BATCH_SIZE", 200)
# Seconds to wait after each failed attempt (Svix-like); after the last one the message fails.
WEBHOOK_RETRY_SCHEDULE = [
    int(x) for x in envlist("WEBHOOK_RETRY_SCHEDULE", "5,300,1800,7200,18000,36000,36000")
]
WEBHOOK_DISABLE_AFTER_HOURS = envint("WEBHOOK_DISABLE_AFTER_HOURS", 120)
WEBHOOK_SECRET_OVERLAP_HOURS = envint("WEBHOOK_SECRET_OVERLAP_HOURS", 24)

# Periodic jobs and the abuse loop.
EXPIRY_CHECK_SECONDS = envint("EXPIRY_CHECK_SECONDS", 60)
# How stale a DNSBL listing may be before it suspends an exemption: a spam run does its damage in
# hours, so a quarter of an hour (a DQS key is needed at that rate for any real fleet).
DNSBL_MONITOR_MINUTES = envint("DNSBL_MONITOR_MINUTES", 15)
# Whole-space DNSBL monitoring (docs/operations.md, "Feeding DNSBL zone files"). The DNS path runs
# a slice every DNSBL_MONITOR_SLICE_SECONDS, paced at DNSBL_QUERIES_PER_SECOND, so that every
# allocated address is checked once per DNSBL_MONITOR_MINUTES and never sooner than its zone's
# minimum (`zone=minutes` entries of DNSBL_MIN_RECHECK_MINUTES; DNSBL_MONITOR_MINUTES otherwise).
DNSBL_QUERIES_PER_SECOND = float(os.environ.get("DNSBL_QUERIES_PER_SECOND", "20"))
DNSBL_MONITOR_SLICE_SECONDS = envint("DNSBL_MONITOR_SLICE_SECONDS", 60)
DNSBL_MIN_RECHECK_MINUTES = envlist("DNSBL_MIN_RECHECK_MINUTES")
# Zone files (rbldnsd datasets) synced to disk: `<zone>.<format>` files in DNSBL_ZONE_DIR, and/or
# `zone:format:path` entries in DNSBL_ZONE_FILES (rbldnsd's own notation). A zone read from a file
# is not queried over DNS.
DNSBL_ZONE_DIR = os.environ.get("DNSBL_ZONE_DIR", "")
DNSBL_ZONE_FILES = envlist("DNSBL_ZONE_FILES")
DNSBL_ZONE_CHECK_MINUTES = envint("DNSBL_ZONE_CHECK_MINUTES", 5)
DNSBL_ZONE_REIMPORT_MINUTES = envint("DNSBL_ZONE_REIMPORT_MINUTES", 60)
DNSBL_ZONE_MAX_AGE_HOURS = envint("DNSBL_ZONE_MAX_AGE_HOURS", 24)
# How a zone meets the allocations: "sweep" (sorted intervals in the worker, any database) or
# "postgresql" (COPY into a temporary table, inet/cidr overlap through a GiST index).
DNSBL_ZONE_INTERSECTION = os.environ.get("DNSBL_ZONE_INTERSECTION", "sweep")
if DNSBL_ZONE_INTERSECTION not in ("sweep", "postgresql"):
    raise ImproperlyConfigured(
        f"DNSBL_ZONE_INTERSECTION must be sweep or postgresql, not {DNSBL_ZONE_INTERSECTION!r}"
    )
# A listing source whose last complete pass had more look-up errors than this share is failing.
DNSBL_SOURCE_MAX_ERROR_SHARE = float(os.environ.get("DNSBL_SOURCE_MAX_ERROR_SHARE", "0.05"))
SUSPEND_ON_LISTS = envlist("SUSPEND_ON_LISTS", "SBL,CSS,XBL,DROP,BCL")
SUSPEND_AFTER_COMPLAINTS = envint("SUSPEND_AFTER_COMPLAINTS", 3)
SUSPEND_COMPLAINT_WINDOW_HOURS = envint("SUSPEND_COMPLAINT_WINDOW_HOURS", 24)
WORKER_HEARTBEAT_MAX_AGE_SECONDS = envint("WORKER_HEARTBEAT_MAX_AGE_SECONDS", 120)

METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
# Hot-path counters (feed answers) are written by each process at most this often.
METRICS_FLUSH_SECONDS = float(os.environ.get("METRICS_FLUSH_SECONDS", "1"))

# Retention of rows that grow with traffic (docs/operations.md, "Retention"). The audit log is
# never pruned; pending and failed deliveries and emails stay until they are done.
WEBHOOK_ATTEMPT_RETENTION_DAYS = envint("WEBHOOK_ATTEMPT_RETENTION_DAYS", 30)
WEBHOOK_DELIVERY_RETENTION_DAYS = envint("WEBHOOK_DELIVERY_RETENTION_DAYS", 90)
EMAIL_RETENTION_DAYS = envint("EMAIL_RETENTION_DAYS", 90)
# The change feed keeps at least this long: a consumer that lagged longer gets reset: true.
FEED_RETENTION_DAYS = envint("FEED_RETENTION_DAYS", 90)
# Snapshot feeds are built once per version by a worker into the "feeds" storage (a directory
# by default; any Django storage backend through STORAGES["feeds"]) and kept this long after a
# newer version replaced them, so that a download under way finishes.
FEED_ARTIFACT_GRACE_MINUTES = envint("FEED_ARTIFACT_GRACE_MINUTES", 10)
# Web processes reuse the feed's version they read this long: a 304 then costs no query, and a
# change reaches every process within this time.
FEED_VERSION_CACHE_SECONDS = float(os.environ.get("FEED_VERSION_CACHE_SECONDS", "1"))
# Answer a snapshot with a redirect to the storage's own URL (a signed S3 URL, a CDN origin).
FEED_STORAGE_REDIRECT = envbool("FEED_STORAGE_REDIRECT", "False")
CHECK_RESULT_RETENTION_DAYS = envint("CHECK_RESULT_RETENTION_DAYS", 365)
VETTING_RUN_RETENTION_DAYS = envint("VETTING_RUN_RETENTION_DAYS", 365)
RETENTION_BATCH_SIZE = envint("RETENTION_BATCH_SIZE", 1000)

# Port-25 telemetry from enforcement agents and flow forwarders (docs/operations.md).
AGENT_STALE_SECONDS = envint("AGENT_STALE_SECONDS", 300)
TELEMETRY_RETENTION_DAYS = envint("TELEMETRY_RETENTION_DAYS", 90)
TELEMETRY_MAX_BYTES = envint("TELEMETRY_MAX_BYTES", 16 * 1024 * 1024)
TELEMETRY_BLOCKED_PER_HOUR = envint("TELEMETRY_BLOCKED_PER_HOUR", 100)
TELEMETRY_EPISODE_QUIET_HOURS = envint("TELEMETRY_EPISODE_QUIET_HOURS", 24)
TELEMETRY_VOLUME_FACTOR = envint("TELEMETRY_VOLUME_FACTOR", 10)
TELEMETRY_VOLUME_FLOOR = envint("TELEMETRY_VOLUME_FLOOR", 50)
TELEMETRY_VOLUME_ACTION = os.environ.get("TELEMETRY_VOLUME_ACTION", "both").strip().lower()
if TELEMETRY_VOLUME_ACTION not in ("notify", "suspend", "both"):
    raise ImproperlyConfigured(
        f"TELEMETRY_VOLUME_ACTION must be notify, suspend or both, got {TELEMETRY_VOLUME_ACTION!r}"
    )
TELEMETRY_VETTING_DAYS = envint("TELEMETRY_VETTING_DAYS", 7)

API_KEY_HASH_SECRET = os.environ.get("API_KEY_HASH_SECRET", SECRET_KEY)
# Enforcement keys verified this recently are trusted without a query on the feeds' hot path;
# a revocation reaches every process within this many seconds.
API_KEY_CACHE_SECONDS = float(os.environ.get("API_KEY_CACHE_SECONDS", "1"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}
