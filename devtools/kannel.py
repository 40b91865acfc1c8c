"""A private Kannel (bearerbox + smsbox) on loopback: its configuration, for `make dev SMS_ROUTES=*=kannel`, the
tests of the Kannel route (tests/kannel.py) and the Kannel scenario of bench/sms.py, written in one place.

For development every Kannel route SMS_ROUTES names gets its KANNEL_<R>_* settings pointed at this smsbox, unless
they are set already (a real smsbox), and the SMSC behind it is Kannel's own fake SMSC (`fakesmsc`, from
kannel-extras), which prints every message it is given in the dev server's output and sends none of its own (see
docs/providers.md for a real SMPP link). The tests link bearerbox to SMPP servers of their own instead.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from config.settings import AFRICASTALKING_ROUTE, KANNEL_SETTING

FAKESMSC = "/usr/lib/kannel/test/fakesmsc"
# Where Debian puts the boxes (root's PATH has /usr/sbin, a developer's may not).
BINARY_PATH = "/usr/sbin:/usr/bin"
# Loopback ports of the development Kannel.
ADMIN_PORT, SMSBOX_PORT, SENDSMS_PORT, FAKE_SMSC_PORT = 13000, 13001, 13013, 10000
USERNAME, PASSWORD = "gateway", "development"
# The sender of development messages (a short code).
SENDER = "31000"
# Seconds bearerbox and smsbox have to open their ports.
START_SECONDS = 15
# The fake SMSC's smsc-id; every development route sends through it.
SMSC_ID = "fake"
# What bearerbox sends as system_type when binding to an SMPP server (none).
SMPP_SYSTEM_TYPE = '""'
# Seconds between bearerbox's attempts to reconnect a lost SMPP link, and between its enquire_links.
SMPP_RECONNECT_SECONDS = 1
SMPP_ENQUIRE_LINK_SECONDS = 5
# Messages one sendsms call may be split into (a long Sesotho notice in UCS-2 takes several).
MAX_MESSAGES_PER_SENDSMS = 10


@dataclass(frozen=True)
class KannelPorts:
    """The loopback ports of one Kannel: bearerbox's admin and box ports, smsbox's sendsms port."""

    admin: int = ADMIN_PORT
    smsbox: int = SMSBOX_PORT
    sendsms: int = SENDSMS_PORT

    @property
    def sendsms_url(self) -> str:
        return f"http://127.0.0.1:{self.sendsms}"


@dataclass(frozen=True)
class KannelConfig:
    """What one private Kannel is made of; `write` turns it into a kannel.conf that both boxes read.

    `smpp_links` are SMSCs bearerbox connects to over SMPP (smsc-id → port); `fake_links` are fake SMSCs that
    connect to bearerbox (smsc-id → the port bearerbox listens on for them). `inbound_url` is the smsbox get-url of
    incoming SMS, the gateway's Kannel inbound URL with its token (without it, no sms-service is configured)."""

    directory: Path
    ports: KannelPorts = field(default_factory=KannelPorts)
    username: str = USERNAME
    password: str = PASSWORD
    inbound_url: str = ""
    smpp_links: dict[str, int] = field(default_factory=dict)
    fake_links: dict[str, int] = field(default_factory=dict)
    sender: str | None = None  # smsbox's global-sender, for messages that name none
    log_level: int | None = None  # 0 (debug) to 4; Kannel's default (info) when None

    @property
    def path(self) -> Path:
        return self.directory / "kannel.conf"

    def write(self) -> Path:
        (self.directory / "store").mkdir(parents=True, exist_ok=True)
        log_level = "" if self.log_level is None else f"log-level = {self.log_level}\n"
        smpp = "".join(
            f"""
group = smsc
smsc = smpp
smsc-id = {smsc_id}
allowed-smsc-id = {smsc_id}
host = 127.0.0.1
port = {port}
transceiver-mode = true
smsc-username = kannel
smsc-password = secret
system-type = {SMPP_SYSTEM_TYPE}
reconnect-delay = {SMPP_RECONNECT_SECONDS}
enquire-link-interval = {SMPP_ENQUIRE_LINK_SECONDS}
"""
            for smsc_id, port in self.smpp_links.items()
        )
        fake = "".join(
            f"""
group = smsc
smsc = fake
smsc-id = {smsc_id}
port = {port}
"""
            for smsc_id, port in self.fake_links.items()
        )
        sender = f"global-sender = {self.sender}\n" if self.sender else ""
        service = (
            f"""
group = sms-service
keyword = default
catch-all = true
max-messages = 0
get-url = "{self.inbound_url}&from=%p&to=%P&text=%a&id=%I&smsc=%i&time=%t"
"""
            if self.inbound_url
            else ""
        )
        self.path.write_text(
            f"""group = core
admin-port = {self.ports.admin}
admin-password = {self.password}
smsbox-port = {self.ports.smsbox}
box-allow-ip = 127.0.0.1
admin-allow-ip = 127.0.0.1
log-file = "{self.directory}/bearerbox.log"
{log_level}store-type = file
store-location = "{self.directory}/store/kannel.store"
dlr-storage = internal
sms-resend-retry = -1
{smpp}{fake}
group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = {self.ports.smsbox}
sendsms-port = {self.ports.sendsms}
sendsms-interface = 127.0.0.1
log-file = "{self.directory}/smsbox.log"
{log_level}{sender}mo-recode = true

group = sendsms-user
username = {self.username}
password = {self.password}
concatenation = true
max-messages = {MAX_MESSAGES_PER_SENDSMS}
{service}"""
        )
        return self.path


def kannel_routes(sms_routes: str) -> list[str]:
    """The Kannel route names in an SMS_ROUTES value."""
    names = [part.partition("=")[2].strip() for part in sms_routes.split(";") if "=" in part]
    return list(dict.fromkeys(name for name in names if name and name.lower() != AFRICASTALKING_ROUTE))


def binaries() -> tuple[str, str] | None:
    """bearerbox and smsbox, or None when Kannel is not installed."""
    bearerbox = shutil.which("bearerbox", path=BINARY_PATH)
    smsbox = shutil.which("smsbox", path=BINARY_PATH)
    return (bearerbox, smsbox) if bearerbox and smsbox else None


def installed() -> bool:
    return binaries() is not None


def route_settings(routes: list[str], sendsms_url: str, smsc: str, env: dict[str, str]) -> None:
    """Point each route's KANNEL_<R>_* settings in `env` at this smsbox, unless they are set already."""
    for route in routes:
        for name, value in {"URL": sendsms_url, "USERNAME": USERNAME, "PASSWORD": PASSWORD, "SMSC": smsc}.items():
            env.setdefault(KANNEL_SETTING.format(route=route.upper(), name=name), value)


def fakesmsc_command(port: int) -> list[str]:
    """Kannel's fake SMSC on `port`, sending no messages of its own (`-m 0`), only printing those it is given."""
    return [FAKESMSC, "-H", "127.0.0.1", "-r", str(port), "-m", "0", "0 0 text nop"]


def start(directory: Path, routes: list[str], inbound_url: str, env: dict[str, str]) -> list[subprocess.Popen]:
    """The development Kannel: write the configuration, start the boxes and the fake SMSC, and fill in
    KANNEL_<R>_* in `env`."""
    config = KannelConfig(directory, inbound_url=inbound_url, fake_links={SMSC_ID: FAKE_SMSC_PORT}, sender=SENDER)
    config.write()
    route_settings(routes, config.ports.sendsms_url, SMSC_ID, env)
    bearerbox, smsbox = binaries()
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}  # both boxes write their own log files
    started = [subprocess.Popen([bearerbox, str(config.path)], **quiet)]
    wait_for_port(config.ports.smsbox)  # smsbox gives up if bearerbox is not listening yet
    started.append(subprocess.Popen([smsbox, str(config.path)], **quiet))
    wait_for_port(FAKE_SMSC_PORT)
    wait_for_port(config.ports.sendsms)
    started.append(subprocess.Popen(fakesmsc_command(FAKE_SMSC_PORT)))
    return started


def answers(port: int) -> bool:
    """Does something listen on this loopback port?"""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def wait_for_port(port: int, timeout: float = START_SECONDS) -> bool:
    """Wait until the port answers; False if it did not within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if answers(port):
            return True
        time.sleep(0.1)
    return False
