"""Flower with its ``/metrics`` behind the same login as its pages.

Flower 2.2 serves ``/metrics`` (every task's name, state and runtime, every worker's name) to anyone, whatever
``FLOWER_BASIC_AUTH`` says: its handler is not marked authenticated. This entry point swaps that handler for one
that is, then runs ``celery flower`` with the arguments it was given. ``/healthcheck`` (it says "OK", nothing
more) stays open for the compose health check.
"""

from __future__ import annotations

import sys

import tornado.web
from flower import urls
from flower.views.monitor import Metrics


class AuthenticatedMetrics(Metrics):
    @tornado.web.authenticated
    async def get(self) -> None:
        await super().get()


def guard_metrics() -> None:
    """Point Flower's ``/metrics`` route at ``AuthenticatedMetrics`` (Flower builds its app from this list)."""
    urls.handlers[:] = [
        (entry[0], AuthenticatedMetrics, *entry[2:]) if isinstance(entry, tuple) and entry[1] is Metrics else entry
        for entry in urls.handlers
    ]


def main() -> None:
    from celery.__main__ import main as celery_main

    guard_metrics()
    sys.argv[0] = "celery"
    celery_main()


if __name__ == "__main__":
    main()
