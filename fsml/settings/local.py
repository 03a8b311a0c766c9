"""Development and the embedded demo: DEBUG on, a throwaway secret key unless one is given."""

from __future__ import annotations

from fsml.settings.base import *  # noqa: F403 -- settings modules extend the base namespace
from fsml.settings.base import SECRET_KEY, env_bool, require_secret_key

DEBUG = env_bool("DEBUG", True)
if DEBUG:
    SECRET_KEY = SECRET_KEY or "fsml-local-development-only-never-used-with-debug-off"
require_secret_key(DEBUG, SECRET_KEY)
