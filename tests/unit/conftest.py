"""The unit tier needs no database, no broker and no network: each test is refused a service fixture, and every
connection to a service port or to another machine fails it (setup, body and teardown alike)."""

from __future__ import annotations

from collections.abc import Generator

import pytest

from tests.no_services import no_service_connections, refusal


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    reason = refusal(item)
    if reason is not None:
        pytest.fail(f"{item.nodeid} is in tests/unit, but {reason}: move it to tests/integration", pytrace=False)
    with no_service_connections():
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    with no_service_connections():
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, None, None]:
    with no_service_connections():
        return (yield)
