"""Production: refuses to start with unsafe settings."""

from __future__ import annotations

from config.settings.base import *  # noqa: F403 -- settings modules extend the base namespace
from config.settings.base import SECRET_KEY, env_bool, require_secret_key

DEBUG = env_bool("DEBUG", False)
require_secret_key(DEBUG, SECRET_KEY)
if not DEBUG:
    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
    CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", True)
    SECURE_CONTENT_TYPE_NOSNIFF = True
