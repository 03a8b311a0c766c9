"""Development and the embedded demo: DEBUG on, a throwaway secret key unless one is given."""

from __future__ import annotations

from config.settings.base import *  # noqa: F403 -- settings modules extend the base namespace
from config.settings.base import env_bool

DEBUG = env_bool("DEBUG", True)
SECRET_KEY = SECRET_KEY or "fsml-local-development-only"  # noqa: F405 -- never used in production
