"""Database helpers shared by the services modules."""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.db import OperationalError, connections
from django.db.models import QuerySet

T = TypeVar("T")
RETRYABLE = (1213, 1205)  # MySQL deadlock, lock wait timeout: the transaction was rolled back whole


def retry_deadlocks(attempts: int = 5) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Run a function that opens its own transaction again when MySQL rolled it back for a deadlock, after a short
    random pause (outside any transaction: the rolled-back one holds no lock), so the two sides do not meet again."""

    def wrap(fn: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> T:
            for attempt in range(1, attempts + 1):
                try:
                    return fn(*args, **kwargs)
                except OperationalError as exc:
                    if not (exc.args and exc.args[0] in RETRYABLE) or attempt == attempts:
                        raise
                    time.sleep(random.uniform(0, 0.02 * attempt))  # noqa: S311 -- jitter, not a secret
            raise AssertionError("unreachable")

        return run

    return wrap


def estimated_rows(model: Any) -> int | None:
    """MariaDB's estimate of a table's rows (its statistics, no scan); ``None`` on other databases."""
    connection = connections["default"]
    if connection.vendor != "mysql" or not connection.mysql_is_mariadb:  # type: ignore[attr-defined]
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s",
            [model._meta.db_table],
        )
        row = cursor.fetchone()
    return None if row is None or row[0] is None else int(row[0])


def first_pks_checking_exists_per_row(queryset: QuerySet[Any], limit: int) -> list[Any]:
    """The first ``limit`` primary keys of ``queryset``, whose ``EXISTS`` conditions are checked row by row.

    MariaDB turns an ``EXISTS`` into a semi-join (``exists_to_in``) and may then drive the query from the
    subquery's table: a substring search of the items "that have a task in this project" would read every task and
    look up its item, twice the time of reading the items and looking up a task only for the few whose text
    matches. ``SET STATEMENT ... FOR`` switches that off for this one statement (other databases run it as is).
    """
    query = queryset.values_list("pk", flat=True)[:limit]
    connection = connections[query.db]
    if connection.vendor != "mysql" or not connection.mysql_is_mariadb:  # type: ignore[attr-defined]
        return list(query)
    sql, params = query.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET STATEMENT optimizer_switch='exists_to_in=off' FOR " + sql, params)
        return [row[0] for row in cursor.fetchall()]
