"""An HTTP server on 127.0.0.1 that callbacks are delivered to in the tests: it answers each POST with the next
of the statuses it was given (200 once they are used up), after ``delay`` seconds, and keeps every call it got."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Call:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    url: str  # http://127.0.0.1:PORT/hook
    answers: list[int]  # the statuses still to give, in order
    calls: list[Call] = field(default_factory=list)


@contextmanager
def receiving(*answers: int, location: str = "", delay: float = 0) -> Iterator[Receiver]:
    """A receiver on a free port, answering ``answers`` in turn; a 3xx answer sends ``location`` with it. Each call
    is kept as it arrives and answered ``delay`` seconds later (a sender killed meanwhile never hears the answer)."""
    receiver = Receiver("", list(answers))

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 -- http.server's name
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            receiver.calls.append(Call(self.path, dict(self.headers), body))
            time.sleep(delay)
            status = receiver.answers.pop(0) if receiver.answers else 200
            self.send_response(status)
            if 300 <= status < 400:
                self.send_header("Location", location)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
