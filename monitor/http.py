"""HTTP endpoints: ``/metrics`` (Prometheus), ``/healthz`` (liveness), ``/readyz`` (readiness)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["HttpServer"]

log = logging.getLogger(__name__)

_INDEX = b"""<!doctype html><title>driftline</title>
<h1>driftline</h1><ul>
<li><a href="/metrics">/metrics</a> Prometheus metrics</li>
<li><a href="/healthz">/healthz</a> liveness: the loop made progress recently</li>
<li><a href="/readyz">/readyz</a> readiness: connected to Kafka with partitions assigned</li>
</ul>"""


class HttpServer:
    """Serves the endpoints from a background thread.

    Parameters
    ----------
    host, port
        Where to bind; port 0 picks a free port (see :attr:`port`).
    metrics
        Returns the exposition body and its content type.
    healthy, ready
        Probes for ``/healthz`` and ``/readyz``.
    pages
        More routes: path -> (body, content type), e.g. the status page at ``/``.
    """

    def __init__(
        self,
        host: str,
        port: int,
        metrics: Callable[[], tuple[bytes, str]],
        healthy: Callable[[], bool],
        ready: Callable[[], bool],
        pages: Mapping[str, Callable[[], tuple[bytes, str]]] | None = None,
    ) -> None:
        routes: dict[str, Callable[[], tuple[int, bytes, str]]] = {
            "/metrics": lambda: (200, *metrics()),
            "/healthz": lambda: _probe(healthy(), "ok", "stalled"),
            "/readyz": lambda: _probe(ready(), "ready", "not ready"),
            "/": lambda: (200, _INDEX, "text/html; charset=utf-8"),
        }
        for path, page in (pages or {}).items():
            routes[path] = lambda page=page: (200, *page())  # type: ignore[misc]

        class Handler(BaseHTTPRequestHandler):
            server_version = "driftline"

            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                route = routes.get(self.path.split("?", 1)[0])
                if route is None:
                    status, body, ctype = 404, b"not found\n", "text/plain; charset=utf-8"
                else:
                    status, body, ctype = route()
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                log.debug("http: " + format, *args)

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="driftline-http", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _probe(ok: bool, yes: str, no: str) -> tuple[int, bytes, str]:
    return (
        (200, f"{yes}\n".encode(), "text/plain") if ok else (503, f"{no}\n".encode(), "text/plain")
    )
