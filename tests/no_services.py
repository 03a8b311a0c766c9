"""What keeps the unit tier honest: no database, no broker, no network. A unit test that asks for a database
fixture, or opens a connection to a service port or to another machine, fails with the reason."""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol
from urllib.parse import urlsplit

import pytest

# Fixtures that reach the database, the broker or a process serving them.
SERVICE_FIXTURES = frozenset(
    {"db", "transactional_db", "django_db_setup", "live_env", "child_env", "service_client", "clean_broker"}
    | {"celery_worker", "worker_pool", "registered_model", "server", "web_server", "browser", "chromium"}
    | {"live_server", "django_db_reset_sequences", "django_db_serialized_rollback"}
)
DEFAULT_PORTS = frozenset({3306, 6379})  # MariaDB and Redis
SERVICE_URLS = ("DATABASE_URL", "CELERY_BROKER_URL", "FSML_CRAWL_REDIS_URL")


class ServiceUsed(AssertionError):
    """A unit test reached for a service."""


def service_ports() -> frozenset[int]:
    """MariaDB's and Redis's usual ports and the ports the service URLs of this environment name."""
    ports = set(DEFAULT_PORTS)
    for name in SERVICE_URLS:
        try:
            port = urlsplit(os.environ.get(name, "")).port
        except ValueError:  # not a URL with a port: nothing to add
            continue
        if port:
            ports.add(port)
    return frozenset(ports)


class Collected(Protocol):
    """What ``refusal`` reads of a collected test."""

    def get_closest_marker(self, name: str) -> Any: ...


def refusal(item: Collected) -> str | None:
    """Why the collected test ``item`` does not belong in the unit tier, or None."""
    if item.get_closest_marker("django_db") is not None:
        return "it is marked django_db"
    used = SERVICE_FIXTURES & set(getattr(item, "fixturenames", ()))
    return f"it uses {', '.join(sorted(used))}" if used else None


def check_address(address: Any, ports: frozenset[int]) -> None:
    """Raise ServiceUsed for an (host, port) address on a service port or off this machine."""
    if not isinstance(address, tuple) or len(address) < 2:
        return  # a Unix socket path
    host, port = address[0], address[1]
    if port in ports:
        raise ServiceUsed(f"a unit test connected to {host}:{port}, a database or broker port")
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise ServiceUsed(f"a unit test connected to {host}:{port}: the unit tier uses no network")


@contextmanager
def no_service_connections() -> Iterator[None]:
    """Refuse, within the block, every socket connection to a service port or to another machine."""
    ports = service_ports()
    connect, connect_ex = socket.socket.connect, socket.socket.connect_ex

    def guarded_connect(sock: socket.socket, address: Any) -> None:
        check_address(address, ports)
        connect(sock, address)

    def guarded_connect_ex(sock: socket.socket, address: Any) -> int:
        check_address(address, ports)
        return connect_ex(sock, address)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", guarded_connect)
        patch.setattr(socket.socket, "connect_ex", guarded_connect_ex)
        yield
