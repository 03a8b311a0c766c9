"""The unit tier's guard (tests/no_services.py) refuses what it promises to refuse."""

from __future__ import annotations

import socket

import pytest
import redis

from tests.no_services import ServiceUsed, no_service_connections, refusal


def test_a_connection_to_a_service_port_or_another_machine_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://127.0.0.1:16379/0")
    with no_service_connections():
        for address in (("127.0.0.1", 3306), ("127.0.0.1", 6379), ("127.0.0.1", 16379), ("192.0.2.1", 80)):
            with socket.socket() as sock, pytest.raises(ServiceUsed):
                sock.connect(address)
        with pytest.raises(ServiceUsed):
            socket.create_connection(("localhost", 3306), timeout=1)
        with pytest.raises(ServiceUsed):  # redis-py connects through the socket module too
            redis.Redis(port=6379, socket_connect_timeout=1).ping()


def test_a_loopback_server_of_the_test_itself_is_allowed() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with no_service_connections(), socket.socket() as client:
            client.connect(server.getsockname())


class CollectedTest:
    """What ``refusal`` reads of a collected test: its django_db marker and the fixtures it uses."""

    def __init__(self, fixturenames: list[str], marked: bool = False) -> None:
        self.fixturenames, self.marked = fixturenames, marked

    def get_closest_marker(self, name: str) -> object | None:
        return pytest.mark.django_db.mark if self.marked and name == "django_db" else None


def test_tests_that_ask_for_the_database_or_a_service_are_refused(request: pytest.FixtureRequest) -> None:
    assert refusal(request.node) is None
    assert refusal(CollectedTest(["tmp_path"], marked=True)) == "it is marked django_db"
    assert refusal(CollectedTest(["tmp_path", "db"])) == "it uses db"
    assert refusal(CollectedTest(["server", "live_env"])) == "it uses live_env, server"
