"""A private Kannel (bearerbox + smsbox) on free loopback ports, for the tests of the Kannel route.

Skipped with a reason when Kannel is not installed, unless REQUIRE_KANNEL=1 (CI installs it and sets that).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from devtools.kannel import KannelConfig, KannelPorts
from tests.servers import free_port

# Seconds Kannel's boxes have to open their ports.
START_SECONDS = 20
SENDSMS_USER, SENDSMS_PASSWORD = "gateway", "kannel-test-password"
SHORT_CODE = "31000"
# Kannel's most detailed logs: a failing test shows what the boxes did.
DEBUG_LOG_LEVEL = 0


def kannel_binaries() -> tuple[str, str]:
    """bearerbox and smsbox, or a skip (a failure with REQUIRE_KANNEL=1) saying how to get them."""
    bearerbox = shutil.which("bearerbox") or shutil.which("bearerbox", path="/usr/sbin")
    smsbox = shutil.which("smsbox") or shutil.which("smsbox", path="/usr/sbin")
    if bearerbox and smsbox:
        return bearerbox, smsbox
    reason = "Kannel is not installed (apt-get install kannel kannel-extras); set REQUIRE_KANNEL=1 to fail instead"
    if os.environ.get("REQUIRE_KANNEL") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


@dataclass
class Kannel:
    """bearerbox and smsbox with one SMPP link per entry of `smscs` (smsc-id → SMSC port)."""

    directory: Path
    smscs: dict[str, int]
    inbound_url: str  # the gateway's Kannel inbound URL, with its token
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    admin_port: int = field(default_factory=free_port)
    smsbox_port: int = field(default_factory=free_port)
    sendsms_port: int = field(default_factory=free_port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sendsms_port}"

    def write_config(self) -> Path:
        ports = KannelPorts(admin=self.admin_port, smsbox=self.smsbox_port, sendsms=self.sendsms_port)
        config = KannelConfig(
            self.directory,
            ports=ports,
            username=SENDSMS_USER,
            password=SENDSMS_PASSWORD,
            inbound_url=self.inbound_url,
            smpp_links=self.smscs,
            log_level=DEBUG_LOG_LEVEL,
        )
        return config.write()

    def start(self) -> Kannel:
        self.write_config()
        self.start_bearerbox()
        self.start_smsbox()
        return self

    def start_bearerbox(self) -> None:
        bearerbox, _ = kannel_binaries()
        self.processes["bearerbox"] = self._spawn(bearerbox, "bearerbox")
        self._wait(self.smsbox_port, "bearerbox")

    def start_smsbox(self) -> None:
        _, smsbox = kannel_binaries()
        self.processes["smsbox"] = self._spawn(smsbox, "smsbox")
        self._wait(self.sendsms_port, "smsbox")

    def kill_bearerbox(self) -> None:
        """SIGKILL: no goodbye to the SMSC, nothing flushed but what the store already holds."""
        process = self.processes.pop("bearerbox")
        process.send_signal(signal.SIGKILL)
        process.wait()

    def restart_smsbox(self) -> None:
        """smsbox ends when its bearerbox goes; start it again (systemd does this in production)."""
        process = self.processes.pop("smsbox", None)
        if process is not None:
            if process.poll() is None:
                process.terminate()
            process.wait(timeout=10)
        self.start_smsbox()

    def stop(self) -> None:
        for name in ("smsbox", "bearerbox"):
            process = self.processes.pop(name, None)
            if process is None:
                continue
            if process.poll() is None:
                process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def _spawn(self, binary: str, name: str) -> subprocess.Popen:
        # Both boxes write their own log files (log-file), which a failing start shows.
        return subprocess.Popen(
            [binary, str(self.directory / "kannel.conf")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def _wait(self, port: int, name: str) -> None:
        deadline = time.monotonic() + START_SECONDS
        while not _answers(port):
            process = self.processes[name]
            if process.poll() is not None or time.monotonic() > deadline:
                log = (
                    (self.directory / f"{name}.log").read_text(errors="replace")[-3000:]
                    if (self.directory / f"{name}.log").exists()
                    else ""
                )
                raise RuntimeError(f"{name} did not open port {port}:\n{log}")
            time.sleep(0.1)
