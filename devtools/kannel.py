"""A development Kannel for `make dev SMS_ROUTES=*=kannel`: bearerbox, smsbox and Kannel's own fake SMSC.

Every Kannel route SMS_ROUTES names gets its KANNEL_<R>_* settings pointed at this smsbox, unless they are set
already (a real smsbox). The fake SMSC (`fakesmsc`, from kannel-extras) prints every message it is given, in the dev
server's output; it sends none of its own (see docs/providers.md for a real SMPP link).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from config.settings import AFRICASTALKING_ROUTE, KANNEL_SETTING

FAKESMSC = "/usr/lib/kannel/test/fakesmsc"
# Loopback ports of the development Kannel.
ADMIN_PORT, SMSBOX_PORT, SENDSMS_PORT, FAKE_SMSC_PORT = 13000, 13001, 13013, 10000
USERNAME, PASSWORD = "gateway", "development"
# The sender of development messages (a short code).
SENDER = "31000"
# Seconds bearerbox has to open the fake SMSC's port.
START_SECONDS = 15
# The fake SMSC's smsc-id; every development route sends through it.
SMSC_ID = "fake"


def kannel_routes(sms_routes: str) -> list[str]:
    """The Kannel route names in an SMS_ROUTES value."""
    names = [part.partition("=")[2].strip() for part in sms_routes.split(";") if "=" in part]
    return list(dict.fromkeys(name for name in names if name and name.lower() != AFRICASTALKING_ROUTE))


def installed() -> bool:
    return bool(
        shutil.which("bearerbox", path="/usr/sbin:/usr/bin") and shutil.which("smsbox", path="/usr/sbin:/usr/bin")
    )


def start(directory: Path, routes: list[str], inbound_url: str, env: dict[str, str]) -> list[subprocess.Popen]:
    """Write the configuration, start the boxes and the fake SMSC, and fill in KANNEL_<R>_* in `env`."""
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "kannel.conf"
    config.write_text(
        f"""group = core
admin-port = {ADMIN_PORT}
admin-password = {PASSWORD}
smsbox-port = {SMSBOX_PORT}
box-allow-ip = 127.0.0.1
log-file = "{directory}/bearerbox.log"
store-type = file
store-location = "{directory}/kannel.store"

group = smsc
smsc = fake
smsc-id = {SMSC_ID}
port = {FAKE_SMSC_PORT}

group = smsbox
bearerbox-host = 127.0.0.1
sendsms-port = {SENDSMS_PORT}
sendsms-interface = 127.0.0.1
log-file = "{directory}/smsbox.log"
global-sender = {SENDER}

group = sendsms-user
username = {USERNAME}
password = {PASSWORD}
concatenation = true
max-messages = 10

group = sms-service
keyword = default
catch-all = true
max-messages = 0
get-url = "{inbound_url}&from=%p&to=%P&text=%a&id=%I&smsc=%i&time=%t"
"""
    )
    for route in routes:
        for name, value in {
            "URL": f"http://127.0.0.1:{SENDSMS_PORT}",
            "USERNAME": USERNAME,
            "PASSWORD": PASSWORD,
            "SMSC": SMSC_ID,
        }.items():
            env.setdefault(KANNEL_SETTING.format(route=route.upper(), name=name), value)
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}  # both boxes write their own log files
    bearerbox = subprocess.Popen([shutil.which("bearerbox", path="/usr/sbin:/usr/bin"), str(config)], **quiet)
    _wait_for_port(SMSBOX_PORT)  # smsbox gives up if bearerbox is not listening yet
    smsbox = subprocess.Popen([shutil.which("smsbox", path="/usr/sbin:/usr/bin"), str(config)], **quiet)
    _wait_for_port(FAKE_SMSC_PORT)
    _wait_for_port(SENDSMS_PORT)
    fake = subprocess.Popen([FAKESMSC, "-H", "127.0.0.1", "-r", str(FAKE_SMSC_PORT), "-m", "0", "0 0 text nop"])
    return [bearerbox, smsbox, fake]


def _wait_for_port(port: int) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
