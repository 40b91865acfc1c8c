"""`flask --app wsgi ussd-sim`: a feature phone in the terminal that talks to a running gateway over HTTP.

It posts exactly what the provider posts (form fields sessionId, serviceCode, phoneNumber, networkCode, text, with
the cumulative `text` joined by `*`), so what works here works on a phone.
"""

from __future__ import annotations

import os
import uuid

import click
import requests

# Seconds the provider waits for an answer before giving up on the hop.
PROVIDER_TIMEOUT_SECONDS = 10


def _post(url: str, form: dict[str, str], token: str) -> str:
    params = {"token": token} if token else None
    response = requests.post(url, data=form, params=params, timeout=PROVIDER_TIMEOUT_SECONDS)
    if response.status_code != 200:
        return f"END (HTTP {response.status_code}) {response.text.strip()}"
    return response.text


@click.command("ussd-sim")
@click.option("--phone", required=True, help="The caller's number, e.g. +26658000001.")
@click.option("--url", default="http://127.0.0.1:5000/webhooks/at/ussd", show_default=True)
@click.option("--service-code", default=lambda: os.environ.get("USSD_SERVICE_CODE") or "*123#")
@click.option("--network-code", default="65101", show_default=True, help="65101 Vodacom Lesotho, 65102 Econet.")
@click.option("--token", default=lambda: os.environ.get("WEBHOOK_TOKEN", ""), help="WEBHOOK_TOKEN, if set.")
@click.option("--latest-only", is_flag=True, help="Send only the latest answer, as some gateways do.")
def ussd_sim_command(phone, url, service_code, network_code, token, latest_only) -> None:
    """Dial the USSD code and answer screens from the keyboard (Ctrl-D hangs up)."""
    session_id = f"SIM{uuid.uuid4().hex[:16]}"
    answers: list[str] = []
    text = ""
    while True:
        form = {
            "sessionId": session_id,
            "serviceCode": service_code,
            "phoneNumber": phone,
            "networkCode": network_code,
            "text": text,
        }
        try:
            answer = _post(url, form, token)
        except requests.RequestException as exc:
            raise click.ClickException(f"could not reach the gateway at {url}: {exc}") from None
        kind, _, screen = answer.partition(" ")
        click.echo("-" * 32)
        click.echo(screen)
        click.echo("-" * 32)
        if kind != "CON":
            click.echo("[session ended]")
            return
        try:
            reply = click.prompt(">", default="", show_default=False)
        except click.Abort:
            click.echo("\n[hung up]")
            return
        answers.append(reply)
        text = reply if latest_only else "*".join(answers)


if __name__ == "__main__":
    # `python -m devtools.simulator --phone ...`: the simulator only speaks HTTP, so it needs no app and no settings.
    ussd_sim_command()
