"""`flask --app wsgi dev`: the whole gateway on one machine with embedded defaults.

Starts, when missing: an embedded Redis (REDIS_URL unset), the database schema (SQLite under var/ by default), the
provider emulator (AT_API_BASE_URL unset), Kannel (when SMS_ROUTES names a Kannel route, e.g. `*=kannel`, and
Kannel is installed), an RQ worker, and the web app. Ctrl-C stops them all.

The emulator answers in under a millisecond unless told otherwise; to feel a real network, set in the environment
EMULATOR_LATENCY (seconds each messaging call takes, e.g. 0.15 for Africa's Talking from Lesotho), EMULATOR_JITTER
(± seconds around it, e.g. 0.05), and to see the gateway back off, EMULATOR_MAX_CALLS_PER_SECOND and
EMULATOR_MAX_IN_FLIGHT (calls above either are answered HTTP 429).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import click

from config.redis import ensure_embedded_redis
from config.settings import VAR_DIR, default_database_url
from devtools import kannel
from models import migrate

# Port of the provider emulator in development.
EMULATOR_PORT = 8025
# Seconds between delivery and its report from the emulator.
EMULATOR_REPORT_DELAY_SECONDS = 2.0
# Environment variables of `dev` passed to the emulator as options (see the module docstring).
EMULATOR_OPTIONS = {
    "EMULATOR_LATENCY": "--latency",
    "EMULATOR_JITTER": "--jitter",
    "EMULATOR_MAX_CALLS_PER_SECOND": "--max-calls-per-second",
    "EMULATOR_MAX_IN_FLIGHT": "--max-in-flight",
}


@click.command("dev")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True)
def dev_command(host: str, port: int) -> None:
    """Bring the gateway up locally: Redis, migrations, provider emulator, worker and web app."""
    env = dict(os.environ)
    env.setdefault("APP_ENV", "development")
    env["DATABASE_URL"] = env.get("DATABASE_URL") or default_database_url()
    env["REDIS_URL"] = env.get("REDIS_URL") or ensure_embedded_redis()
    token = env.get("WEBHOOK_TOKEN", "")
    base = f"http://{host}:{port}"
    children: list[subprocess.Popen] = []
    # `kill` (SIGTERM) stops the children too, as Ctrl-C does.
    signal.signal(signal.SIGTERM, _interrupt)
    migrate.upgrade(env["DATABASE_URL"])
    click.echo(f"database: {env['DATABASE_URL']}")
    click.echo(f"redis:    {env['REDIS_URL']}")
    if not env.get("AT_API_BASE_URL"):
        report_url = f"{base}/webhooks/at/sms/delivery" + (f"?token={token}" if token else "")
        env["AT_API_BASE_URL"] = f"http://127.0.0.1:{EMULATOR_PORT}"
        env.setdefault("AT_API_KEY", "development-key")
        children.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "devtools.emulator",
                    "--port",
                    str(EMULATOR_PORT),
                    "--delivery-report-url",
                    report_url,
                    "--report-delay",
                    str(EMULATOR_REPORT_DELAY_SECONDS),
                    *emulator_options(env),
                ],
                env=env,
            )
        )
        click.echo(f"provider: emulator at {env['AT_API_BASE_URL']} (inbox: {env['AT_API_BASE_URL']}/inbox/<phone>)")
    routes = kannel.kannel_routes(env.get("SMS_ROUTES", ""))
    if routes and kannel.installed():
        env.setdefault("KANNEL_CALLBACK_URL", base)
        inbound = f"{base}/webhooks/kannel/sms/inbound?token={token}"
        children.extend(kannel.start(VAR_DIR / "kannel", routes, inbound, env))
        click.echo(f"kannel:   smsbox at http://127.0.0.1:{kannel.SENDSMS_PORT} for {', '.join(routes)} (fake SMSC)")
    elif routes:
        click.echo(f"kannel:   not installed (apt-get install kannel kannel-extras); routes {', '.join(routes)} fail")
    flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
    children.append(subprocess.Popen([*flask, "worker"], env=env))
    click.echo(f"USSD:     {base}/webhooks/at/ussd  (try: python -m devtools.simulator --phone +26658000001)")
    web = subprocess.Popen([*flask, "run", "--host", host, "--port", str(port), "--no-reload"], env=env)
    children.append(web)
    try:
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        for child in children:
            if child.poll() is None:
                child.terminate()
        for child in children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()


def emulator_options(env: dict[str, str]) -> list[str]:
    """The emulator's command-line options that the EMULATOR_* variables of `env` ask for."""
    options: list[str] = []
    for name, option in EMULATOR_OPTIONS.items():
        if env.get(name, "").strip():
            options += [option, env[name].strip()]
    return options


def _interrupt(_signum, _frame) -> None:
    raise KeyboardInterrupt
