"""`driftline demo`, as a newcomer runs it, without a terminal: drift caught, shown, Ctrl-C."""

from __future__ import annotations

import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from driftline_testing import wait_for
from monitor.local_broker import free_port

pytestmark = pytest.mark.timeout(240)


def test_the_demo_catches_the_drift_shows_it_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    out = tmp_path / "demo.out"
    with out.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "monitor", "demo", "--plain", "--change-after", "20",
             "--http-port", str(port)],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            wait_for(
                lambda: (
                    "ALERT FIRING FeatureDrift churn/monthly_spend" in out.read_text()
                    or process.poll() is not None
                ),
                90,
                "the demo to catch the feature drift",
            )
            assert process.poll() is None, out.read_text()
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as reply:
                page = reply.read().decode()
            assert "<span class='firing'>FeatureDrift</span>" in page
            assert "monthly_spend" in page and "<svg" in page
            process.send_signal(signal.SIGINT)
            assert process.wait(30) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    text = out.read_text()
    assert "driftline demo: stopped." in text
    # Only the drifted feature of the drifted model, and nothing for the steady model.
    drifted = [line for line in text.splitlines() if "ALERT FIRING FeatureDrift" in line]
    assert all("churn/monthly_spend" in line for line in drifted)
    assert not [line for line in text.splitlines() if "ALERT FIRING" in line and " eta" in line]
