"""Settings shared by every environment. Every environment variable fsml reads is read here.

Variables:
    FSML_HOME: folder for embedded state (SQLite file, DVC data repo and remote, model store,
        filesystem broker). Default ``.fsml`` in the working directory.
    DATABASE_URL: ``sqlite:///path`` or ``mysql://user:pass@host:port/name``. Default: SQLite in FSML_HOME.
    CELERY_BROKER_URL: ``redis://...`` or ``filesystem://`` (default; needs no server).
    SECRET_KEY, DEBUG, ALLOWED_HOSTS: as in Django; production refuses to start without SECRET_KEY.
    FSML_DVC_REMOTE: DVC remote URL or folder. Default: ``FSML_HOME/dvc-remote``.
    FSML_DVC_REMOTE_ENDPOINT: endpoint URL of an S3-compatible remote (MinIO). Default: none (AWS).
    FSML_MODEL_STORE: folder or ``s3://bucket/prefix`` for model archives. Default: ``FSML_HOME/models``.
    FSML_MODEL_STORE_ENDPOINT: endpoint URL of an S3-compatible model store. Default: FSML_DVC_REMOTE_ENDPOINT.
    FSML_CRAWL_REDIS_URL: Redis for distributed crawls' shared frontier. Default: local Redis, database 1.
    FSML_TOKEN_CACHE_SECONDS, FSML_TOKEN_MAX_AGE_DAYS: API tokens (below).
    FSML_LOGIN_FAILURE_LIMIT, FSML_LOGIN_COOLOFF_MINUTES, FSML_NUM_PROXIES, FSML_CACHE_URL,
    FSML_API_ANON_RATE, FSML_API_USER_RATE, FSML_TOKEN_FAILURE_RATE: sign-in lockout and API throttles.
    FSML_MODEL_QUEUES, FSML_BATCH_*, FSML_JOB_LEASE_SECONDS, FSML_REQUEUE_*, FSML_GROUP_SUBMITS,
    FSML_MODEL_REF_CACHE_SECONDS, FSML_RUNTIMES_KEPT, FSML_SERVING_BACKEND, FSML_CALLBACK_*,
    FSML_WORKER_METRICS_*, FSML_METRICS_TOKEN, FSML_METRICS_OPEN: serving (the block near the end).

Outside this package only entry points read the environment before Django starts (``fsml worker`` checks
``FSML_SERVING_BACKEND``; ``fsml submit`` reads ``FSML_URL`` and ``FSML_TOKEN``), and code that runs without
Django reads what its own tools set (``WORLD_SIZE`` from torchrun, ``PROMETHEUS_MULTIPROC_DIR``).
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import dj_database_url
from csp.constants import NONCE
from django.core.exceptions import ImproperlyConfigured


def env_bool(name: str, default: bool) -> bool:
    """Read a boolean environment variable (1/true/yes/on are true)."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def env_number(name: str, default: float, minimum: float = 0.0) -> float:
    """Read a numeric environment variable; a hard failure, naming it, when it is not a number or too small."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not value >= minimum:  # also false for NaN
        raise ImproperlyConfigured(f"{name}={raw!r}: expected a number of at least {minimum:g}")
    return value


def require_secret_key(debug: bool, secret_key: str) -> None:
    """Refuse to start without a real SECRET_KEY whenever DEBUG is off."""
    if not debug and len(secret_key) < 32:
        raise ImproperlyConfigured(
            "SECRET_KEY must be set to a random string of at least 32 characters when DEBUG is off."
        )


def env_rate(name: str, default: str) -> str | None:
    """Read a DRF throttle rate such as ``20/minute`` (per second, minute, hour or day); empty: no limit (None)."""
    raw = os.environ.get(name, default).strip()
    if not raw:
        return None
    count, _, period = raw.partition("/")
    if not (count.isdigit() and int(count) > 0 and period in {"second", "minute", "hour", "day", "s", "m", "h", "d"}):
        raise ImproperlyConfigured(f"{name}={raw!r}: expected a rate such as 20/minute (second, minute, hour, day)")
    return raw


def env_list(name: str, default: str) -> list[str]:
    """Read a comma-separated environment variable."""
    return [part.strip() for part in os.environ.get(name, default).split(",") if part.strip()]


BASE_DIR = Path(__file__).resolve().parent.parent.parent
FSML_HOME = Path(os.environ.get("FSML_HOME", ".fsml")).resolve()
DVC_REPO_DIR = FSML_HOME / "data"
DVC_REMOTE = os.environ.get("FSML_DVC_REMOTE", str(FSML_HOME / "dvc-remote"))
# S3-compatible remotes (s3://bucket/path, needs the `s3` extra): the endpoint of MinIO or another non-AWS
# store; credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY as boto reads them.
DVC_REMOTE_ENDPOINT = os.environ.get("FSML_DVC_REMOTE_ENDPOINT", "")
# Model archives: a folder, or s3://bucket/prefix (needs the `s3` extra) on MinIO or S3, so workers on other
# machines fetch them; FSML_MODEL_STORE_ENDPOINT defaults to the DVC remote's endpoint (one MinIO for both).
MODEL_STORE = os.environ.get("FSML_MODEL_STORE", str(FSML_HOME / "models"))
MODEL_STORE_ENDPOINT = os.environ.get("FSML_MODEL_STORE_ENDPOINT", DVC_REMOTE_ENDPOINT)
MODEL_CACHE_DIR = FSML_HOME / "model-cache"
# Shared frontier of distributed crawls (scrapy-redis); only used when a crawl runs several processes.
CRAWL_REDIS_URL = os.environ.get("FSML_CRAWL_REDIS_URL", "redis://127.0.0.1:6379/1")

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and Redoc as static files: no CDN
    "axes",  # login lockout: failed sign-ins per username and address, listed and reset in the admin
    "csp",
    "datastore",
    "crawler",
    "annotation",
    "serving",
    "evaluation",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "fsml.middleware.DatabaseUnavailableMiddleware",  # MariaDB down: a 503 with a reason, never an HTML 500
    "axes.middleware.AxesMiddleware",  # last, as django-axes asks: turns a locked-out sign-in into its page
]

# Security headers (SecurityMiddleware): nosniff and same-origin referrers everywhere; HSTS in production.py.
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# No inline script and no eval: every script is a file from this site, or carries the request's nonce (the API
# docs' init). Styles allow inline attributes: Vue binds style="" (progress bars, span highlights) and Redoc
# injects <style> elements; a style cannot run script.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'", NONCE],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:", "blob:"],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "worker-src": ["'self'", "blob:"],  # Redoc's search runs in a worker made from a blob
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

# Sign-in lockout (django-axes): FSML_LOGIN_FAILURE_LIMIT failed sign-ins for one username from one address lock
# that pair out for FSML_LOGIN_COOLOFF_MINUTES; staff unlock sooner in the admin or with
# `manage.py axes_reset_username NAME` (docs/operations.md).
AUTHENTICATION_BACKENDS = [
    "fsml.auth.LoginLockoutBackend",  # first: refuses a locked-out pair before the password is checked
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = int(env_number("FSML_LOGIN_FAILURE_LIMIT", 10, minimum=1))
AXES_COOLOFF_TIME = timedelta(minutes=env_number("FSML_LOGIN_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"  # attempts in the database: every web process sees them
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "fsml.auth.lockout_response"
AXES_CLIENT_IP_CALLABLE = "fsml.auth.client_ip"
# Client addresses: REMOTE_ADDR, or with FSML_NUM_PROXIES=N the address N proxies back in X-Forwarded-For (the
# header is the client's to forge unless a proxy of yours sets it). Lockouts and API throttles count by it.
FSML_NUM_PROXIES = int(env_number("FSML_NUM_PROXIES", 0))


def cache_config(url: str) -> dict[str, Any]:
    """The default cache from FSML_CACHE_URL: ``redis://...`` (shared by every process) or ``locmem://``."""
    if url.startswith(("redis://", "rediss://")):
        return {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url, "KEY_PREFIX": "fsml"}
    if url == "locmem://":
        return {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    raise ImproperlyConfigured(f"FSML_CACHE_URL={url!r}: expected redis://host:port/db or locmem://")


ROOT_URLCONF = "fsml.urls"
WSGI_APPLICATION = "fsml.wsgi.application"

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
                "annotation.context_processors.layout",  # the layout's project switcher
            ],
        },
    },
]


def database_config(url: str) -> dict[str, Any]:
    """Turn DATABASE_URL into a Django DATABASES entry with the options each engine needs."""
    config: dict[str, Any] = dict(dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True))
    engine = config["ENGINE"]
    if engine.endswith("sqlite3"):
        # WAL and IMMEDIATE transactions let the web server, the crawler and the workers share one
        # file without "database is locked" errors under light concurrency.
        config["CONN_MAX_AGE"] = 0
        config["OPTIONS"] = {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
        }
    elif engine.endswith("mysql"):
        config["OPTIONS"] = {
            "charset": "utf8mb4",
            "init_command": "SET sql_mode='STRICT_TRANS_TABLES', innodb_lock_wait_timeout=20",
            "isolation_level": "read committed",
        }
        config["TEST"] = {"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"}
    return config


DATABASE_URL = os.environ.get("DATABASE_URL", f"sqlite:///{FSML_HOME / 'fsml.sqlite3'}")
DATABASES = {"default": database_config(DATABASE_URL)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = FSML_HOME / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns on every request when it is missing
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True  # serve app static files without a collectstatic step in development
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"

# Seconds a token's user stays cached in each web process (a revoked token works that long elsewhere).
TOKEN_CACHE_SECONDS = env_number("FSML_TOKEN_CACHE_SECONDS", 10)
# API tokens older than this many days are refused as expired (0: tokens never expire).
TOKEN_MAX_AGE_DAYS = env_number("FSML_TOKEN_MAX_AGE_DAYS", 0)
# Request bodies up to 16 MB: a 10 MB image job (base64) or a batch submit of 256 long texts; larger bodies get a
# 413 from the API.
DATA_UPLOAD_MAX_MEMORY_SIZE = 16 * 1024 * 1024

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "fsml.auth.CachedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # One JSON parser for every endpoint: too-deep nesting and lone surrogates are a 400, never a 500.
    "DEFAULT_PARSER_CLASSES": [
        "fsml.parsers.StrictJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 100,
    "DEFAULT_SCHEMA_CLASS": "fsml.schema.AutoSchema",  # drf-spectacular's, with what blank and null fields refuse
    "URL_FORMAT_OVERRIDE": None,
    "EXCEPTION_HANDLER": "fsml.api.exception_handler",  # ?format= names import/export formats, not renderers
    # Anonymous callers are throttled per address; signed-in callers only when FSML_API_USER_RATE is set (services
    # submit many jobs a second). Failed token look-ups count per address in fsml.auth (token_failure).
    "DEFAULT_THROTTLE_CLASSES": ["rest_framework.throttling.AnonRateThrottle"]
    + (["rest_framework.throttling.UserRateThrottle"] if env_rate("FSML_API_USER_RATE", "") else []),
    "DEFAULT_THROTTLE_RATES": {
        "anon": env_rate("FSML_API_ANON_RATE", "120/minute"),
        "user": env_rate("FSML_API_USER_RATE", ""),
        "token_failure": env_rate("FSML_TOKEN_FAILURE_RATE", "20/minute"),
    },
    "NUM_PROXIES": FSML_NUM_PROXIES,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "fsml API",
    "DESCRIPTION": "Annotation, crawl monitoring and inference jobs. Token or session authentication.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    # Swagger UI and Redoc from drf-spectacular-sidecar's static files, never from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Without deep links Swagger UI renders each operation's path as text, not as a link inside its expand button
    # (a control nested in a control, which axe-core reports as serious).
    "SWAGGER_UI_SETTINGS": {"deepLinking": False},
    # The refusals every operation can give (401, 403, 404, 400, 429...), documented once for all views.
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "fsml.schema.add_error_responses"],
    # The API reads JSON (form posts are still parsed, for old callers, but not offered); imports say multipart.
    "PARSER_WHITELIST": ["fsml.parsers.StrictJSONParser"],
    "COMPONENT_SPLIT_PATCH": False,  # no PATCH view here is partial: each validates the whole body it documents
}

# Celery. Jobs record their own results in the database, so no result backend is needed.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
_BROKER_DIR = FSML_HOME / "broker"
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT_OPTIONS: dict = {
        "data_folder_in": str(_BROKER_DIR / "queue"),
        "data_folder_out": str(_BROKER_DIR / "queue"),
        "processed_folder": str(_BROKER_DIR / "processed"),
        "control_folder": str(_BROKER_DIR / "control"),  # kombu's default is ./control in the working directory
        "store_processed": False,
        "polling_interval": 0.05,
    }
    # The filesystem transport needs its folders before the first message; web and worker both create them.
    (_BROKER_DIR / "queue").mkdir(parents=True, exist_ok=True)
    (_BROKER_DIR / "processed").mkdir(parents=True, exist_ok=True)
    (_BROKER_DIR / "control").mkdir(parents=True, exist_ok=True)
else:
    # Redis gives a message a worker took but never acknowledged (the worker died) to another worker after this many
    # seconds. Over the longest task time limit, or Redis hands a task still running to a second worker (celery
    # #5935); production refuses a shorter one. Jobs and callbacks do not wait for it: the requeue loop resends them.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env_number("FSML_BROKER_VISIBILITY_TIMEOUT", 7200, minimum=1)
    }
CELERY_TASK_ALWAYS_EAGER = False  # never eager: jobs run in real worker processes
# Celery closes every database connection around every task unless told to reuse them; serving.tasks closes only
# the broken and the old ones (CONN_MAX_AGE), as Django does around requests.
CELERY_DB_REUSE_MAX = 1000
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_DEFAULT_QUEUE = "inference"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# A batch's hard time limit (serving.tasks); a claim's lease (FSML_JOB_LEASE_SECONDS) must outlast it, or the
# jobs of a live worker are put back and run twice.
INFERENCE_TASK_TIME_LIMIT = 60
# A callback delivery's hard time limit (a POST waits 10 s at most); its claim (FSML_JOB_LEASE_SECONDS) outlasts it.
CALLBACK_TASK_TIME_LIMIT = 30
# A background project job's hard time limit (annotation.tasks): a job still running after it (its worker died)
# is marked failed, so it never blocks the next one.
PROJECT_JOB_TIME_LIMIT = env_number("FSML_PROJECT_JOB_TIME_LIMIT", 3600, minimum=60)

# Serving: web processes and workers both read these (README "Settings", docs/operations.md).
FSML_MODEL_QUEUES = env_list("FSML_MODEL_QUEUES", "")  # models whose jobs go to a queue of their own, model.NAME
FSML_BATCH_MAX = int(env_number("FSML_BATCH_MAX", 32, minimum=1))  # jobs a worker runs as one batch
FSML_BATCH_WAIT_SECONDS = env_number("FSML_BATCH_WAIT_MS", 2) / 1000  # how long a worker waits to fill a batch
FSML_JOB_LEASE_SECONDS = env_number("FSML_JOB_LEASE_SECONDS", 90, minimum=1)  # a claim's life; then requeued
FSML_REQUEUE_SECONDS = env_number("FSML_REQUEUE_SECONDS", 10, minimum=0.1)  # a worker's requeue loop's period
FSML_REQUEUE_QUEUED_SECONDS = env_number("FSML_REQUEUE_QUEUED_SECONDS", 120, minimum=1)  # resend a lost message
FSML_GROUP_SUBMITS = env_bool("FSML_GROUP_SUBMITS", True)  # group commit of concurrent submits per web process
FSML_MODEL_REF_CACHE_SECONDS = env_number("FSML_MODEL_REF_CACHE_SECONDS", 1)  # a web process's model lookups
FSML_RUNTIMES_KEPT = int(env_number("FSML_RUNTIMES_KEPT", 3, minimum=1))  # model versions loaded per worker process
FSML_SERVING_BACKEND = os.environ.get("FSML_SERVING_BACKEND", "").strip() or "auto"  # modelpack.runtime
FSML_CALLBACK_ALLOWED_HOSTS = {h.lower() for h in env_list("FSML_CALLBACK_ALLOWED_HOSTS", "")}  # "*": every host
FSML_CALLBACK_SECRET = os.environ.get("FSML_CALLBACK_SECRET", "")  # signs callbacks; "" leaves them unsigned
# A worker's /metrics, /healthz and /readyz; None (unset): not served.
FSML_WORKER_METRICS_PORT = int(env_number("FSML_WORKER_METRICS_PORT", 0, minimum=1)) or None
FSML_WORKER_METRICS_HOST = os.environ.get("FSML_WORKER_METRICS_HOST", "0.0.0.0")
# Who may scrape /metrics, web and workers (fsml.metrics_auth): a bearer token; unset, loopback clients only,
# or anyone with FSML_METRICS_OPEN (the port is guarded elsewhere). Production needs one of the two.
FSML_METRICS_TOKEN = os.environ.get("FSML_METRICS_TOKEN", "").strip()
FSML_METRICS_OPEN = env_bool("FSML_METRICS_OPEN", False)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# The default cache holds the API's throttle counters; every web process must share it (Redis), or each counts
# alone. Default: the Celery broker when it is Redis (keys prefixed "fsml:"), else this process's memory.
FSML_CACHE_URL = os.environ.get("FSML_CACHE_URL", "").strip() or (
    CELERY_BROKER_URL if CELERY_BROKER_URL.startswith(("redis://", "rediss://")) else "locmem://"
)
CACHES = {"default": cache_config(FSML_CACHE_URL)}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "onnx_ir": {"level": "WARNING"},  # the ONNX exporter's passes log every step at INFO
        "onnxscript": {"level": "WARNING"},
        "dvc": {"level": "WARNING"},
        "axes.apps": {"level": "WARNING"},  # its start-up banner on every command; lockouts log from axes.handlers
    },
}
