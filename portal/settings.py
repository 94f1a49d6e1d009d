"""Settings for the Licensing Portal, read from the environment.

With no environment at all the portal runs on its embedded default: SQLite under var/, an
in-memory cache, Celery tasks run eagerly and emails are written to files under var/emails.
Setting DJANGO_PRODUCTION=true switches to production mode, which refuses insecure defaults.
"""

from __future__ import annotations

import os
from email.utils import formataddr
from pathlib import Path
from typing import Any

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("PORTAL_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


PRODUCTION = env_bool("DJANGO_PRODUCTION")
DEBUG = env_bool("DJANGO_DEBUG", default=not PRODUCTION)

_DEV_SECRET_KEY = "django-insecure-demo-key-only-for-the-embedded-default"  # noqa: S105
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "" if PRODUCTION else _DEV_SECRET_KEY)
REDIS_URL = os.environ.get("REDIS_URL", "")


def placeholder_secret(value: str) -> bool:
    """A secret copied from an example rather than generated (.env.example says change-me)."""
    lowered = value.lower()
    return any(word in lowered for word in ("change-me", "changeme", "change_me", "insecure"))


ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "" if PRODUCTION else "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

LICENSE_SIGNING_KEY_FILE = Path(
    os.environ.get("LICENSE_SIGNING_KEY_FILE", VAR_DIR / "license-signing-key.pem")
)
# Public keys of retired signing keys (`manage.py signing_key rotate` adds them), published so
# files signed before a rotation still verify. None: `retired-signing-keys/` beside the key file.
LICENSE_SIGNING_RETIRED_KEYS_DIR = (
    Path(os.environ["LICENSE_SIGNING_RETIRED_KEYS_DIR"])
    if os.environ.get("LICENSE_SIGNING_RETIRED_KEYS_DIR")
    else None
)

if PRODUCTION:
    # Production refuses to start on a default it would be unsafe to run with.
    if (
        not SECRET_KEY
        or SECRET_KEY == _DEV_SECRET_KEY
        or len(SECRET_KEY) < 50
        or len(set(SECRET_KEY)) < 10
        or placeholder_secret(SECRET_KEY)
    ):
        raise ImproperlyConfigured(
            "Set DJANGO_SECRET_KEY to a random string of 50+ characters, not the example's "
            "placeholder (python -c 'import secrets; print(secrets.token_urlsafe(64))')."
        )
    if not REDIS_URL:
        # Without Redis, tasks would run in the web process, the outbox relay and the voucher
        # resume job would never run, and rate limits would be per process.
        raise ImproperlyConfigured("Set REDIS_URL in production mode (Celery broker and cache).")
    if DEBUG:
        raise ImproperlyConfigured("DJANGO_DEBUG must be off in production mode.")
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured("Set DJANGO_ALLOWED_HOSTS in production mode.")
    # A missing LICENSE_SIGNING_KEY_FILE is refused when the web server starts (portal/wsgi.py)
    # and by `manage.py check`, not here, so that `manage.py signing_key create` can make it.

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "formtools",
    "crispy_forms",
    "crispy_bootstrap5",
    "import_export",
    "csp",
    "django_countries",
    "portal",
    "licensing",
    "upgrades",
    "vouchers",
    "enterprise_flex",
    "fileconnect",
]

MIDDLEWARE = [
    # First, so that every log line of the request, and its error page, carry its ID.
    "portal.middleware.RequestContextMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_permissions_policy.PermissionsPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    # A NUL in the query (an edited link) is dropped: PostgreSQL's text refuses it.
    "portal.middleware.NulQueryMiddleware",
    "portal.middleware.BidiControlsMiddleware",
    # Django's AuthenticationMiddleware, loading the user's memberships in the same query.
    "portal.middleware.PortalAuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "portal.middleware.PrivateNoStoreMiddleware",
    # A GET of a form-only address: a translated page, not an empty 405 (inside the no-store).
    "portal.middleware.MethodNotAllowedPageMiddleware",
    # Last, so that it sees the exceptions of views: Redis or the broker down is a translated
    # "temporarily unavailable" page, not a 500.
    "portal.middleware.ServiceUnavailableMiddleware",
]

ROOT_URLCONF = "portal.urls"
# Benchmarks: mounts /bench-floor/, a page that only loads the session and the user, which
# bench/run.py measures every page against. Ignored in production mode.
PORTAL_BENCH_FLOOR = env_bool("PORTAL_BENCH_FLOOR") and not PRODUCTION
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portal.context_processors.portal",
            ],
        },
    },
]

_DATABASE_URL = os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'portal.sqlite3'}")
# Persistent connections on a server database: opening a PostgreSQL connection per request
# halved the dashboard's throughput (issue 13). The health check pings a reused connection once
# per request, so a restarted database costs one failed ping, not a 500. SQLite opens a file,
# nothing to save, and keeps the embedded default and the tests as they were.
_CONN_MAX_AGE_DEFAULT = "0" if _DATABASE_URL.startswith("sqlite") else "60"
DATABASES = {
    "default": dj_database_url.parse(
        _DATABASE_URL,
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", _CONN_MAX_AGE_DEFAULT)),
        conn_health_checks=env_bool("DATABASE_CONN_HEALTH_CHECKS", default=True),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A transaction on SQLite begins by reading; two that then write (a double-clicked Confirm)
    # would each wait for the other to stop reading, so SQLite fails one at once with "database
    # is locked" (a 500), its timeout unused. Taking the write lock at BEGIN makes the second
    # wait for the first to commit, up to `timeout` seconds, and then see what it wrote (the
    # key already issued). Options in the URL (?timeout=...) win.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        **DATABASES["default"].get("OPTIONS", {}),
    }
# The mint's few statements (portal/rows.py) prepared once per PostgreSQL connection. Off behind
# a pooler that shares server connections without tracking prepared statements.
DATABASE_PREPARED_STATEMENTS = env_bool("DATABASE_PREPARED_STATEMENTS", default=True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# How long My licenses keeps a rendered page in the cache (licensing/listcache.py); 0: never.
# A change to anything the page shows makes a new key at once: this only bounds the memory.
LICENSE_LIST_CACHE_SECONDS = int(os.environ.get("LICENSE_LIST_CACHE_SECONDS", "300"))

# How long a request waits for Redis (cache and broker) before it degrades. Short, so that with
# Redis down every page still answers within 2 seconds; Redis on the same network answers in
# well under a millisecond.
REDIS_CONNECT_TIMEOUT = float(os.environ.get("PORTAL_REDIS_CONNECT_TIMEOUT", "0.5"))
REDIS_SOCKET_TIMEOUT = float(os.environ.get("PORTAL_REDIS_SOCKET_TIMEOUT", "1"))


def redis_cache(url: str) -> dict[str, Any]:
    """The cache on Redis, falling back to process memory while Redis is down (portal/cache.py)."""
    return {
        "BACKEND": "portal.cache.FallbackRedisCache",
        "LOCATION": url,
        "OPTIONS": {
            "socket_connect_timeout": REDIS_CONNECT_TIMEOUT,
            "socket_timeout": REDIS_SOCKET_TIMEOUT,
        },
    }


if REDIS_URL:
    CACHES = {"default": redis_cache(REDIS_URL)}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_USER_MODEL = "portal.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
# Argon2id at OWASP's minimum first (portal/hashers.py); the others verify older hashes, which
# are re-hashed with Argon2id at the user's next login.
PASSWORD_HASHERS = [
    "portal.hashers.PortalArgon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "dashboard"

# django-allauth: email is the login; verification is optional in the demo, mandatory in production.
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = os.environ.get(
    "ACCOUNT_EMAIL_VERIFICATION", "mandatory" if PRODUCTION else "optional"
)
ACCOUNT_UNIQUE_EMAIL = True
# A password reset for an address without an account sends nothing (allauth emailed it an
# "Unknown Account ... sign up" note: anyone could make the portal write to any address, outside
# its own limits on emails to others). The page reads the same either way.
ACCOUNT_EMAIL_UNKNOWN_ACCOUNTS = False
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
# Security notices to the account's address: password changed, set or reset, an address added,
# removed or made primary, two-factor turned on or off (with the IP address and browser). A
# portal that hands out license keys must not let an account be taken over unnoticed.
ACCOUNT_EMAIL_NOTIFICATIONS = True
ACCOUNT_ADAPTER = "portal.adapters.AccountAdapter"
ACCOUNT_FORMS = {
    "signup": "portal.forms.PortalSignupForm",
    # Another account's address is refused, and resets reach only the accounts it belongs to.
    "add_email": "portal.forms.PortalAddEmailForm",
    "reset_password": "portal.forms.PortalResetPasswordForm",
    # Sentence-case labels ("Remember me", "Current password"): allauth's are Title Case.
    "login": "portal.forms.PortalLoginForm",
    "change_password": "portal.forms.PortalChangePasswordForm",
    "reset_password_from_key": "portal.forms.PortalResetPasswordKeyForm",
}
# The subject prefix is the translated site name, "[<PORTAL_SITE_NAME>] " (portal.emails).
# Failed logins: per client IP, and per account *and* IP (portal.adapters keys "key" on both), so
# wrong passwords sent from elsewhere never lock the account's owner out. The IP comes from
# portal.requestcontext (PORTAL_TRUSTED_PROXY_COUNT), which allauth uses through the adapter.
# login_failed: per address and client IP (AccountAdapter). reset_password: allauth's 5 a
# minute to one address let anyone send an inbox ~300 reset emails an hour; now as few as the
# portal's own "email the key again" allows per address.
ACCOUNT_RATE_LIMITS = {
    "login_failed": "10/m/ip,60/h/ip,5/5m/key",
    "reset_password": "20/m/ip,5/h/key",
}
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = os.environ.get("PORTAL_SITE_NAME") or "Licensing Portal"
# One 30-second step either side, as RFC 6238 suggests for clock drift between phone and server.
MFA_TOTP_TOLERANCE = 1

LANGUAGE_CODE = "en"
# As the session and CSRF cookies: not sent on cross-site subrequests.
LANGUAGE_COOKIE_SAMESITE = "Lax"
LANGUAGES = [("en", _("English")), ("pt-br", _("Brazilian Portuguese"))]
LOCALE_PATHS = [BASE_DIR / "portal" / "locale"]
# Dates follow the active language: portal/formats/<lang>/formats.py (English keeps ISO dates,
# unambiguous for every English-speaking country; pt-BR writes 02/12/2026). Templates print
# dates with |date:"SHORT_DATE_FORMAT"; CSV exports keep ISO (isoformat()).
FORMAT_MODULE_PATH = ["portal.formats"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("DJANGO_STATIC_ROOT", VAR_DIR / "staticfiles"))
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(os.environ.get("DJANGO_MEDIA_ROOT", VAR_DIR / "media"))
STORAGES: dict[str, dict[str, Any]] = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

# FileConnect's release files: a local directory by default; an S3-compatible bucket when
# FILECONNECT_S3_BUCKET is set (credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or any
# other source boto3 reads). README, "FileConnect", lists the variables.
FILECONNECT_ROOT = Path(os.environ.get("FILECONNECT_ROOT", VAR_DIR / "fileconnect"))
FILECONNECT_S3_BUCKET = os.environ.get("FILECONNECT_S3_BUCKET", "")
if FILECONNECT_S3_BUCKET:
    STORAGES["fileconnect"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": FILECONNECT_S3_BUCKET,
            "endpoint_url": os.environ.get("FILECONNECT_S3_ENDPOINT_URL") or None,
            "region_name": os.environ.get("FILECONNECT_S3_REGION") or None,
            "location": os.environ.get("FILECONNECT_S3_PREFIX", ""),
            "addressing_style": os.environ.get("FILECONNECT_S3_ADDRESSING_STYLE") or None,
            "file_overwrite": False,
            "default_acl": None,
            # SigV4: what every S3-compatible store accepts for presigned URLs.
            "signature_version": "s3v4",
        },
    }
else:
    STORAGES["fileconnect"] = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": FILECONNECT_ROOT},
    }
# Downloads from S3 redirect to a presigned URL valid this long (false: the portal streams them).
FILECONNECT_S3_PRESIGNED = env_bool("FILECONNECT_S3_PRESIGNED", default=True)
FILECONNECT_PRESIGNED_SECONDS = int(os.environ.get("FILECONNECT_PRESIGNED_SECONDS", "300"))
# Behind nginx: the internal location that serves FILECONNECT_ROOT (deploy/nginx.conf). Empty:
# the portal streams local files itself.
FILECONNECT_X_ACCEL_LOCATION = os.environ.get("FILECONNECT_X_ACCEL_LOCATION", "")

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

# Email: SMTP when EMAIL_HOST is set, otherwise files under var/emails (one file per message).
# The sender's display name is the portal's (PORTAL_SITE_NAME) unless DEFAULT_FROM_EMAIL says.
_SENDER_NAME = os.environ.get("PORTAL_SITE_NAME") or "Licensing Portal"
DEFAULT_FROM_EMAIL = os.environ.get(
    "DEFAULT_FROM_EMAIL", formataddr((_SENDER_NAME, "licensing@example.com"))
)
# Unless DEFAULT_FROM_EMAIL is set, each email's From names the portal as its subject's prefix
# does, in the language the email is written in ("Portal de licenciamento" above "[Portal de
# licenciamento] …"; portal.emails.sender_address). A configured display name is kept as it is.
PORTAL_FROM_NAME_IS_SITE_NAME = "DEFAULT_FROM_EMAIL" not in os.environ
SERVER_EMAIL = DEFAULT_FROM_EMAIL
EMAIL_SUBJECT_PREFIX = f"[{_SENDER_NAME}] "
# What every email and page calls the portal, and where it lives. Unset, the name is the
# translated "Licensing Portal"; set, it is used as it is in both languages (a brand).
PORTAL_SITE_NAME: Any = os.environ.get("PORTAL_SITE_NAME") or _("Licensing Portal")
PORTAL_SITE_URL = os.environ.get("PORTAL_SITE_URL", "http://127.0.0.1:8000").rstrip("/")
# Whom a locked-out user contacts (spent code or login budgets, the 429 page): a web page, an
# email address, or both; shown as a link. Unset, the messages say "contact customer care".
PORTAL_SUPPORT_URL = os.environ.get("PORTAL_SUPPORT_URL", "").strip()
PORTAL_SUPPORT_EMAIL = os.environ.get("PORTAL_SUPPORT_EMAIL", "").strip()
EMAIL_HOST = os.environ.get("EMAIL_HOST", "")
# An SMTP server that hangs must not hold a worker beyond the task's time limit.
EMAIL_TIMEOUT = int(os.environ.get("EMAIL_TIMEOUT", "20"))
# The outbox retries a failed email after 1, 2, 4… minutes (at most an hour apart), 12 times in
# all (about 6 hours), then marks it failed for staff to resend (admin → Outbound emails).
PORTAL_EMAIL_RETRY_SECONDS = int(os.environ.get("PORTAL_EMAIL_RETRY_SECONDS", "60"))
PORTAL_EMAIL_MAX_ATTEMPTS = int(os.environ.get("PORTAL_EMAIL_MAX_ATTEMPTS", "12"))
# The outbox sends in batches: a task claims up to OUTBOX_BATCH_SIZE due emails at once and sends
# them over one mail server connection. Its claim lasts OUTBOX_BATCH_SECONDS and is renewed while
# the batch is still sending; a claim left by a worker that died is taken over once it lapses.
OUTBOX_BATCH_SIZE = int(os.environ.get("OUTBOX_BATCH_SIZE", "50"))
OUTBOX_BATCH_SECONDS = int(os.environ.get("OUTBOX_BATCH_SECONDS", "30"))
if EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
    EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
    EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
    EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS")
else:
    EMAIL_BACKEND = os.environ.get(
        "EMAIL_BACKEND", "django.core.mail.backends.filebased.EmailBackend"
    )
    EMAIL_FILE_PATH = VAR_DIR / "emails"

# Celery: Redis when REDIS_URL is set; otherwise tasks run eagerly in the web process.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL or "memory://localhost/")
# No result backend: nothing reads task results (pages read the database, e.g. a voucher
# conversion's progress), and the Redis result backend made every .delay() wait up to 20 s for
# its own connection when Redis was down.
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", default=not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A web request hands work to the broker once, quickly: a broker that is down costs a page at
# most about a second (the outbox relay and the resume job send what was not handed over).
CELERY_BROKER_CONNECTION_TIMEOUT = REDIS_CONNECT_TIMEOUT
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.2,
}
# The worker, on the other hand, keeps reconnecting for as long as the broker is away.
CELERY_BROKER_CONNECTION_RETRY = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A task taken by a worker that died (kill -9, OOM, lost host) goes back to the queue once the
# visibility timeout passes: with acks_late, every task that is not acknowledged early must
# finish well within it (hence the time limits below and chunked voucher conversions).
PORTAL_VISIBILITY_TIMEOUT = int(os.environ.get("PORTAL_VISIBILITY_TIMEOUT", "120"))
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": PORTAL_VISIBILITY_TIMEOUT,
    "socket_connect_timeout": REDIS_CONNECT_TIMEOUT,
    # The worker reads its queue when the socket is readable, so a short timeout only bounds
    # the commands themselves, which a healthy Redis answers in well under a millisecond.
    "socket_timeout": REDIS_SOCKET_TIMEOUT,
    "socket_keepalive": True,
    "health_check_interval": 10,
}
CELERY_TASK_SOFT_TIME_LIMIT = int(os.environ.get("PORTAL_TASK_SOFT_TIME_LIMIT", "60"))
CELERY_TASK_TIME_LIMIT = CELERY_TASK_SOFT_TIME_LIMIT + 30
if CELERY_TASK_TIME_LIMIT >= PORTAL_VISIBILITY_TIMEOUT:
    raise ImproperlyConfigured(
        "PORTAL_TASK_SOFT_TIME_LIMIT + 30 must stay below PORTAL_VISIBILITY_TIMEOUT, or a "
        "healthy task would be delivered twice."
    )
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
# The worker logs through LOGGING below (request IDs, masked keys), not its own root handler.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# A voucher conversion silent this long lost its worker: the resume job re-queues it.
PORTAL_STALLED_AFTER = int(os.environ.get("PORTAL_STALLED_AFTER", "60"))
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULE = {
    # Relays any email whose on-commit enqueue was lost (broker down, worker crash).
    "relay-outbox": {"task": "portal.tasks.relay_outbox", "schedule": 60.0},
    # New rows of the search's trigram indexes wait in pending lists that every search reads:
    # merged this often, and after bulk writes (portal.services.gin_pending_lists_merge).
    "merge-search-indexes": {
        "task": "portal.tasks.merge_search_indexes",
        "schedule": float(os.environ.get("PORTAL_GIN_MERGE_EVERY", "30")),
    },
    # Re-queues voucher conversions whose worker was lost; they resume where they stopped.
    # With PORTAL_STALLED_AFTER (60 s) a killed worker's conversion resumes within 2 minutes.
    "vouchers-resume-conversions": {
        "task": "vouchers.tasks.resume_stalled_conversions",
        "schedule": float(os.environ.get("PORTAL_RESUME_EVERY", "30")),
    },
    # Licenses renewed after a version was published become eligible for its upgrade.
    "upgrade-eligibility": {
        "task": "upgrades.tasks.refresh_upgrade_eligibility",
        "schedule": crontab(hour=5, minute=30),
    },
    # Channel-partner delegations that start or end today. Requests check dates themselves;
    # this marks the rows and emails both sides even when the partner never comes back.
    "partner-delegations": {
        "task": "portal.tasks.refresh_delegations",
        "schedule": crontab(minute=5),
    },
    # Daily maintenance-ending digests; a missed day is caught up by the next run.
    "maintenance-reminders": {
        "task": "licensing.tasks.send_maintenance_reminders",
        "schedule": crontab(hour=6, minute=0),
    },
    # Enterprise Flexible: year-end and overdue-report reminders to contracts' super users.
    "ef-reminders": {
        "task": "enterprise_flex.tasks.send_ef_reminders",
        "schedule": crontab(hour=6, minute=15),
    },
}

# Failed attempts at typed codes (serials, notification IDs, vouchers) per 10 minutes: per user,
# per client IP and for the whole portal (portal.ratelimit). Legacy imported serials can be
# short, so the global budget bounds what many accounts on many addresses can guess together.
PORTAL_SERIAL_ATTEMPTS_PER_10_MINUTES = int(os.environ.get("PORTAL_SERIAL_ATTEMPTS", "10"))
PORTAL_CODE_ATTEMPTS_PER_IP = int(os.environ.get("PORTAL_CODE_ATTEMPTS_PER_IP", "30"))
PORTAL_CODE_ATTEMPTS_GLOBAL = int(os.environ.get("PORTAL_CODE_ATTEMPTS_GLOBAL", "300"))
# Emails sent to people on a user's say-so (invitations, shares) per hour.
PORTAL_INVITES_PER_USER_PER_HOUR = int(os.environ.get("PORTAL_INVITES_PER_USER_PER_HOUR", "20"))
PORTAL_INVITES_PER_ORG_PER_HOUR = int(os.environ.get("PORTAL_INVITES_PER_ORG_PER_HOUR", "50"))
# "Email key again": its technical contact's mailbox is not a target. Per license, and per
# technical contact address across all licenses (an organization's licenses may all name one).
PORTAL_KEY_EMAILS_PER_LICENSE_PER_HOUR = int(
    os.environ.get("PORTAL_KEY_EMAILS_PER_LICENSE_PER_HOUR", "5")
)
PORTAL_KEY_EMAILS_PER_ADDRESS_PER_HOUR = int(
    os.environ.get("PORTAL_KEY_EMAILS_PER_ADDRESS_PER_HOUR", "10")
)
# How many reverse proxies (load balancer, nginx) in front of gunicorn append to
# X-Forwarded-For; the client address is read that many entries from the right. 0: the
# address that connected (REMOTE_ADDR), and X-Forwarded-For is ignored (it can be forged).
PORTAL_TRUSTED_PROXY_COUNT = int(os.environ.get("PORTAL_TRUSTED_PROXY_COUNT", "0"))

SESSION_COOKIE_HTTPONLY = True
# With Redis, sessions are read from it and written through to the database, which alone serves
# them while Redis is down (portal/sessions.py); without it, the database.
if REDIS_URL:
    SESSION_ENGINE = "portal.sessions"
CSRF_COOKIE_HTTPONLY = False
# A stale form (open in another tab while the person logged in or out) gets the portal's page.
CSRF_FAILURE_VIEW = "portal.views.csrf_failure"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# Scripts and styles come from our static files only: no inline script, style or handler.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
# The portal uses no browser feature that needs a permission.
PERMISSIONS_POLICY: dict[str, list[str]] = {
    feature: []
    for feature in (
        "accelerometer",
        "autoplay",
        "camera",
        "display-capture",
        "fullscreen",
        "geolocation",
        "gyroscope",
        "magnetometer",
        "microphone",
        "midi",
        "payment",
        "usb",
    )
}
if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    # The language switcher's cookie as well (check --deploy does not look at it).
    LANGUAGE_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_SECURE_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

# Every line carries the request's ID (also in the X-Request-ID header and on the error page),
# and license keys, codes and link tokens are masked before any handler writes them.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "portal.logs.RequestIdFilter"},
        "mask_secrets": {"()": "portal.logs.MaskSecretsFilter"},
    },
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s [%(request_id)s] %(name)s %(message)s"}
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["request_id", "mask_secrets"],
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("DJANGO_LOG_LEVEL", "INFO")},
}
