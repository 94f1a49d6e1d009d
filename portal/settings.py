"""Settings for the Licensing Portal, read from the environment.

With no environment at all the portal runs on its embedded default: SQLite under var/, an
in-memory cache, Celery tasks run eagerly and emails are written to files under var/emails.
Setting DJANGO_PRODUCTION=true switches to production mode, which refuses insecure defaults.
"""

from __future__ import annotations

import os
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
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "" if PRODUCTION else "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

LICENSE_SIGNING_KEY_FILE = Path(
    os.environ.get("LICENSE_SIGNING_KEY_FILE", VAR_DIR / "license-signing-key.pem")
)

if PRODUCTION:
    # Production refuses to start on a default it would be unsafe to run with.
    if not SECRET_KEY or SECRET_KEY == _DEV_SECRET_KEY or len(SECRET_KEY) < 50:
        raise ImproperlyConfigured("Set DJANGO_SECRET_KEY to a random string of 50+ characters.")
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
    "portal",
    "licensing",
    "upgrades",
    "vouchers",
    "enterprise_flex",
    "fileconnect",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
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
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portal.context_processors.portal",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'portal.sqlite3'}"),
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "0")),
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_USER_MODEL = "portal.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
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
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_ADAPTER = "portal.adapters.AccountAdapter"
ACCOUNT_FORMS = {"signup": "portal.forms.PortalSignupForm"}
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[Licensing Portal] "
ACCOUNT_RATE_LIMITS = {"login_failed": "10/m/ip,5/5m/key"}
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "Licensing Portal"
# One 30-second step either side, as RFC 6238 suggests for clock drift between phone and server.
MFA_TOTP_TOLERANCE = 1

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("pt-br", _("Brazilian Portuguese"))]
LOCALE_PATHS = [BASE_DIR / "portal" / "locale"]
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
DEFAULT_FROM_EMAIL = os.environ.get(
    "DEFAULT_FROM_EMAIL", "Licensing Portal <licensing@example.com>"
)
SERVER_EMAIL = DEFAULT_FROM_EMAIL
EMAIL_SUBJECT_PREFIX = "[Licensing Portal] "
PORTAL_SITE_URL = os.environ.get("PORTAL_SITE_URL", "http://127.0.0.1:8000").rstrip("/")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "")
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
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", REDIS_URL or None)
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", default=not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULE = {
    # Relays any email whose on-commit enqueue was lost (broker down, worker crash).
    "relay-outbox": {"task": "portal.tasks.relay_outbox", "schedule": 60.0},
    # Re-queues voucher conversions whose worker was lost; they resume where they stopped.
    "vouchers-resume-conversions": {
        "task": "vouchers.tasks.resume_stalled_conversions",
        "schedule": 300.0,
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

PORTAL_SERIAL_ATTEMPTS_PER_10_MINUTES = int(os.environ.get("PORTAL_SERIAL_ATTEMPTS", "10"))

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_SECURE_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("DJANGO_LOG_LEVEL", "INFO")},
}
