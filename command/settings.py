"""Twelve-factor settings: everything that differs between deployments comes from the environment.

DATABASE_URL   postgres://user:pass@host:port/db   (unset: embedded PostgreSQL in the data dir)
REDIS_URL      redis://host:port/0                 (unset: in-memory channel layer, one process)
MQTT_URL       mqtt://user:pass@host:port           (unset: embedded broker, started by the CLI)
SECRET_KEY, ALLOWED_HOSTS, CSRF_TRUSTED_ORIGINS, DEBUG, WHISTLE_ENV (production|development),
WHISTLE_DATA_DIR, WHISTLE_TIME_ZONE (default Asia/Shanghai).
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from command import embedded

log = logging.getLogger("whistle.settings")

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


WHISTLE_ENV = os.environ.get("WHISTLE_ENV", "development")
PRODUCTION = WHISTLE_ENV == "production"
DEBUG = env_bool("DEBUG", default=False)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if PRODUCTION:
    if DEBUG:
        raise ImproperlyConfigured("WHISTLE_ENV=production refuses to start with DEBUG on.")
    if (
        len(SECRET_KEY) < 32
        or SECRET_KEY.startswith("django-insecure")
        or "change-me" in SECRET_KEY
    ):
        raise ImproperlyConfigured(
            "WHISTLE_ENV=production needs SECRET_KEY set to a random value of 32+ characters "
            "(python -c 'import secrets; print(secrets.token_urlsafe(50))')."
        )
elif not SECRET_KEY:
    SECRET_KEY = embedded.local_secret_key()

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "django_htmx",
    "procrastinate.contrib.django",
    "axes",
    "command.org",
    "command.timeline",
    "incidents",
    "streams",
    "alerts",
    "intake",
    "supervision",
    "demo",
    "frontend",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    # Text PostgreSQL cannot store (NUL, lone surrogates) is refused before any view runs.
    "command.middleware.unstorable_text_refused",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: it turns a locked-out sign-in into the lock-out page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "command.urls"
ASGI_APPLICATION = "command.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
            ],
        },
    },
]

# --- database -------------------------------------------------------------------------------
DATABASE_URL = os.environ.get("DATABASE_URL") or embedded.postgres_url()
# Connections are kept for a minute (checked before reuse): websocket pushes render in a pool of
# threads, and a new connection per render would cost more than the render.
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL,
        conn_max_age=int(os.environ.get("CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
DATABASES["default"].setdefault("OPTIONS", {})
# The test database is named after the database (test_<name>, as Django does) so that two
# checkouts with different DATABASE_URLs on one server do not drop each other's test database.
DATABASES["default"]["TEST"] = {
    "NAME": os.environ.get("WHISTLE_TEST_DATABASE") or f"test_{DATABASES['default']['NAME']}"
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


# --- channel layer --------------------------------------------------------------------------
# Which channels-redis layer carries the pushes (docs/benchmarks.md, "Channel layer"): "core"
# (RedisChannelLayer: a sorted set per group, messages queued per process in Redis) or "pubsub"
# (RedisPubSubChannelLayer: Redis PUBLISH/SUBSCRIBE, nothing kept in Redis).
CHANNEL_LAYER_KINDS = ("core", "pubsub")
DEFAULT_CHANNEL_LAYER = "core"


def channel_layer_kind() -> str:
    """WHISTLE_CHANNEL_LAYER, or the default; anything else is a configuration error."""
    kind = (os.environ.get("WHISTLE_CHANNEL_LAYER") or DEFAULT_CHANNEL_LAYER).strip().lower()
    if kind not in CHANNEL_LAYER_KINDS:
        raise ImproperlyConfigured(
            f"WHISTLE_CHANNEL_LAYER must be one of {', '.join(CHANNEL_LAYER_KINDS)}, not {kind!r}"
        )
    return kind


def redis_channel_layers(url: str, kind: str | None = None) -> dict:
    """The Redis channel layer at ``url`` (also used by the tests for a Redis of their own);
    ``kind`` (core or pubsub) defaults to WHISTLE_CHANNEL_LAYER's."""
    kind = kind or channel_layer_kind()
    host = {
        "address": url,
        # The core layer blocks on Redis for up to 5 s waiting for a message; a read timeout
        # of 5 s killed quiet board sockets (redis-py 8). The pub/sub layer's reader waits
        # on its subscription the same way.
        "socket_timeout": None,
        "health_check_interval": 30,
    }
    if kind == "pubsub":
        # One subscription per process, whatever the number of its sockets. Its groups live in
        # the process: after Redis comes back (empty) the subscription is renewed at the next
        # health check of its connection, so a check every 30 s left sockets deaf for up to a
        # minute; every second it is renewed within a second (bench.layers).
        return {
            "default": {
                "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
                "CONFIG": {"hosts": [{**host, "health_check_interval": 1}]},
            }
        }
    return {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # A thousand boards closing at once are a thousand group_discards.
                "hosts": [{**host, "max_connections": 2000}],
                "capacity": 1000,
                "expiry": 30,
                # A member that joined longer ago than this is dropped from its group. Open
                # sockets join again every ten minutes or so (frontend.consumers); a web
                # process killed without closing its sockets leaves them, and messages queued
                # for them, for this long (channels-redis' default: a day).
                "group_expiry": 3600,
            },
        }
    }


REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CHANNEL_LAYERS = redis_channel_layers(REDIS_URL)
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# --- MQTT -----------------------------------------------------------------------------------
# Read by streams.mqtt.client.broker_config(); the CLI fills MQTT_URL when it starts a broker.
MQTT_URL = os.environ.get("MQTT_URL", "")
MQTT_PROTOCOL = os.environ.get("MQTT_PROTOCOL", "5")
MQTT_CLIENT_ID = os.environ.get("MQTT_CLIENT_ID", "whistle-ingest")
MQTT_TOPIC_PREFIX = os.environ.get("MQTT_TOPIC_PREFIX", "whistle")
# Set to share the gateways' topics between several `whistle ingest` workers ($share/<group>/…).
MQTT_SHARE_GROUP = os.environ.get("MQTT_SHARE_GROUP", "")
FRIGATE_TOPIC_PREFIX = os.environ.get("FRIGATE_TOPIC_PREFIX", "frigate")
# The township whose cameras Frigate's unprefixed frigate/events and frigate/reviews describe, in
# a one-township deployment; unset, those topics are dead letters (a township's Frigate publishes
# under frigate/<township>/…, which the broker confines to that township's credential).
FRIGATE_TOWNSHIP = os.environ.get("FRIGATE_TOWNSHIP", "")
# Dead letters keep the raw payloads of bad messages for diagnosis and replay; the worker deletes
# them after this many days (nightly).
DEAD_LETTER_RETENTION_DAYS = int(os.environ.get("DEAD_LETTER_RETENTION_DAYS", "30"))

# --- auth -----------------------------------------------------------------------------------
AUTH_USER_MODEL = "org.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
AUTHENTICATION_BACKENDS = [
    "command.org.auth.LoginThrottle",
    "django.contrib.auth.backends.ModelBackend",
]
# Sign-in throttling (django-axes, command/org/auth.py): failures are counted per account and
# address in the database, so every web process sees them.
AXES_FAILURE_LIMIT = int(os.environ.get("WHISTLE_LOGIN_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("WHISTLE_LOGIN_LOCKOUT_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "command.org.auth.client_ip"
AXES_LOCKOUT_CALLABLE = "command.org.auth.locked_out"
AXES_VERBOSE = False
# Reverse proxies whose X-Forwarded-For is believed (comma-separated addresses or networks).
WHISTLE_TRUSTED_PROXIES = [
    net.strip() for net in os.environ.get("WHISTLE_TRUSTED_PROXIES", "").split(",") if net.strip()
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

# --- i18n and time --------------------------------------------------------------------------
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "command" / "locale"]
USE_I18N = True
TIME_ZONE = os.environ.get("WHISTLE_TIME_ZONE", "Asia/Shanghai")
USE_TZ = True

# --- static ---------------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", embedded.data_dir() / "static"))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
MEDIA_URL = "media/"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", embedded.data_dir() / "media"))
WHITENOISE_AUTOREFRESH = DEBUG

# --- security -------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # htmx reads it to send X-CSRFToken
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
if PRODUCTION:
    SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", True)
    CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
# A site with its own tile server draws it under the grids (an XYZ template such as
# https://tiles.example/{z}/{x}/{y}.png); empty: the grids alone, no tiles, no internet.
WHISTLE_MAP_TILES = os.environ.get("WHISTLE_MAP_TILES", "")
# CAP messages' sender (CAP 1.2 §3.2.1: globally unique, e.g. the township's domain);
# empty: whistle.<township code>.
WHISTLE_CAP_SENDER = os.environ.get("WHISTLE_CAP_SENDER", "")
# Phones send photos downscaled (the report page does it); 10 MB leaves room for an original.
WHISTLE_PHOTO_MAX_BYTES = int(os.environ.get("WHISTLE_PHOTO_MAX_BYTES", 10_000_000))
# Any request body: the largest photo and its multipart wrapping. Refused before it is read.
WHISTLE_REQUEST_MAX_BYTES = WHISTLE_PHOTO_MAX_BYTES + 1_000_000
# A photo uploaded and never attached to a report or an incident is deleted after this many hours.
WHISTLE_PHOTO_ORPHAN_HOURS = int(os.environ.get("WHISTLE_PHOTO_ORPHAN_HOURS", "24"))
# How long after closing an incident can be reopened (a callback that finds the matter not
# settled, or a closing by mistake); after that it is a new incident.
WHISTLE_REOPEN_DAYS = int(os.environ.get("WHISTLE_REOPEN_DAYS", "30"))
# A call about the same category and place as an open alert first seen within this many hours
# is suggested to the duty officer as a duplicate (merge with one click).
WHISTLE_INTAKE_DUPLICATE_HOURS = int(os.environ.get("WHISTLE_INTAKE_DUPLICATE_HOURS", "24"))
# The daily review (一日一研判) flags an incident still open after this many days.
WHISTLE_REVIEW_STALE_DAYS = int(os.environ.get("WHISTLE_REVIEW_STALE_DAYS", "3"))
# The monthly report goes out on the month's first working day (Monday to Friday on the
# township's clock) from this hour on; the public holidays it skips, as YYYY-MM-DD dates
# (e.g. "2027-02-01,2027-10-01": the Spring Festival and National Day weeks' weekdays).
WHISTLE_REPORT_HOUR = int(os.environ.get("WHISTLE_REPORT_HOUR", "8"))
WHISTLE_REPORT_HOLIDAYS = env_list("WHISTLE_REPORT_HOLIDAYS")

# Lists that grow with the backlog (the board's alert queue, a console's summonses) are sent a
# page at a time: the newest / most urgent this many, the rest on demand over HTTP.
WHISTLE_PAGE_SIZE = int(os.environ.get("WHISTLE_PAGE_SIZE", 50))
# No websocket frame is larger than this (bytes): a bigger state goes out in several frames.
# Daphne refuses frames over 1 MiB, and a browser on a phone should not parse megabytes at once.
WEBSOCKET_FRAME_MAX_BYTES = int(os.environ.get("WEBSOCKET_FRAME_MAX_BYTES", 256 * 1024))

# --- jobs -----------------------------------------------------------------------------------
# Besides each app's tasks module: the queue's own maintenance (stalled-job recovery).
PROCRASTINATE_IMPORT_PATHS: list[str] = ["command.jobs"]
# How often the deadline sweep (overdue summonses whose step has not run) and the stalled-job
# recovery run, in seconds (a divisor of 60: it becomes a cron seconds field). An escalation
# whose own job was lost fires at most this long (plus the sweep's own run) after its moment.
WHISTLE_JOB_SWEEP_SECONDS = int(os.environ.get("WHISTLE_JOB_SWEEP_SECONDS", 15))
# A worker writes a heartbeat this often; the jobs of a worker silent for longer than
# WHISTLE_WORKER_STALLED_AFTER (killed, frozen, cut off) are retried by the recovery.
WHISTLE_WORKER_HEARTBEAT = float(os.environ.get("WHISTLE_WORKER_HEARTBEAT", 10))
WHISTLE_WORKER_STALLED_AFTER = float(os.environ.get("WHISTLE_WORKER_STALLED_AFTER", 30))
# Deliveries that run at once in a worker that serves the `deliveries` queue.
WHISTLE_DELIVERY_CONCURRENCY = int(os.environ.get("WHISTLE_DELIVERY_CONCURRENCY", 4))

# --- webhooks to departments' systems ---------------------------------------------------------
# One attempt's total time (connect + send + read the answer), whatever the server does.
WEBHOOK_TIMEOUT = float(os.environ.get("WEBHOOK_TIMEOUT", 15))
# Destinations on loopback, link-local, private or reserved addresses are refused unless
# allowed: all of them (WEBHOOK_ALLOW_PRIVATE) or the networks listed (CIDR, comma-separated).
WEBHOOK_ALLOW_PRIVATE = env_bool("WEBHOOK_ALLOW_PRIVATE", False)
WEBHOOK_ALLOWED_NETWORKS = env_list("WEBHOOK_ALLOWED_NETWORKS")

# --- notifications to people (督办) ------------------------------------------------------------
# The address people open links from (SMS, e-mail, work group): https://whistle.example.gov.cn
WHISTLE_BASE_URL = os.environ.get("WHISTLE_BASE_URL") or "http://localhost:8000"
# Notifications sent at once by a worker serving the `notifications` queue.
WHISTLE_NOTIFY_CONCURRENCY = int(os.environ.get("WHISTLE_NOTIFY_CONCURRENCY", 4))
# How often the deadline pool looks for steps that have come due: a step (an escalation, an
# overdue level) fires within this of its moment.
WHISTLE_DEADLINE_POLL_SECONDS = float(os.environ.get("WHISTLE_DEADLINE_POLL_SECONDS", 0.2))
# One attempt's total time on an SMS gateway or a work group robot (connect, send, answer): a
# page that cannot go out soon should fail and fall back to the person's next channel.
WHISTLE_NOTIFY_TIMEOUT = float(os.environ.get("WHISTLE_NOTIFY_TIMEOUT") or 10)

# E-mail (channel "email", alerts/delivery/email.py) through Django's SMTP backend. The
# password comes from the environment only (docs/operations.md).
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND") or "django.core.mail.backends.smtp.EmailBackend"
EMAIL_HOST = os.environ.get("EMAIL_HOST") or "localhost"
EMAIL_PORT = int(os.environ.get("EMAIL_PORT") or 25)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)  # STARTTLS, usually port 587
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)  # implicit TLS, usually port 465
# Seconds for each step of the SMTP conversation (Django's socket timeout).
EMAIL_TIMEOUT = float(os.environ.get("EMAIL_TIMEOUT") or 10)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL") or "whistle@localhost"
# With the file backend (`whistle demo` without EMAIL_HOST), one file per message here.
EMAIL_FILE_PATH = os.environ.get("EMAIL_FILE_PATH") or None
SERVER_EMAIL = os.environ.get("SERVER_EMAIL") or DEFAULT_FROM_EMAIL

# SMS (channel "sms", alerts/delivery/sms.py): the provider ("aliyun"), or empty for none (the
# channel then reaches nobody). Alibaba Cloud SMS needs an AccessKey, an approved signature
# (签名) and an approved template whose variables are ${title} and ${link}.
WHISTLE_SMS_PROVIDER = os.environ.get("WHISTLE_SMS_PROVIDER", "").strip().lower()
WHISTLE_SMS_URL = os.environ.get("WHISTLE_SMS_URL") or "https://dysmsapi.aliyuncs.com/"
WHISTLE_SMS_REGION = os.environ.get("WHISTLE_SMS_REGION") or "cn-hangzhou"
WHISTLE_SMS_KEY_ID = os.environ.get("WHISTLE_SMS_KEY_ID", "")
WHISTLE_SMS_KEY_SECRET = os.environ.get("WHISTLE_SMS_KEY_SECRET", "")
WHISTLE_SMS_SIGN_NAME = os.environ.get("WHISTLE_SMS_SIGN_NAME", "")
WHISTLE_SMS_TEMPLATE = os.environ.get("WHISTLE_SMS_TEMPLATE", "")
# ${link} carries only the link's path (n/<token>): for a template approved with the site's
# address in its fixed text ("…https://whistle.example.gov.cn/${link}").
WHISTLE_SMS_LINK_PATH_ONLY = env_bool("WHISTLE_SMS_LINK_PATH_ONLY", False)
if WHISTLE_SMS_PROVIDER not in ("", "aliyun"):
    raise ImproperlyConfigured(
        f'WHISTLE_SMS_PROVIDER={WHISTLE_SMS_PROVIDER!r}: use "aliyun", or leave it empty.'
    )
_sms_missing = [
    name
    for name in (
        "WHISTLE_SMS_KEY_ID",
        "WHISTLE_SMS_KEY_SECRET",
        "WHISTLE_SMS_SIGN_NAME",
        "WHISTLE_SMS_TEMPLATE",
    )
    if WHISTLE_SMS_PROVIDER and not globals()[name]
]
if _sms_missing:
    raise ImproperlyConfigured(
        f"WHISTLE_SMS_PROVIDER={WHISTLE_SMS_PROVIDER} needs {', '.join(_sms_missing)} set."
    )

# --- logging --------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "whistle": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
        "procrastinate": {"handlers": ["console"], "level": "WARNING"},
        "django.request": {"handlers": ["console"], "level": "ERROR", "propagate": False},
    },
}
