"""Development tools on the operator CLI: `dev`, `ussd-sim` and `seed-demo`. Their code lives in `devtools/`."""

from __future__ import annotations

import time
from datetime import date

import click
from flask.cli import with_appcontext

from devtools.demo import seed_demo
from devtools.devserver import dev_command
from devtools.simulator import ussd_sim_command
from gateway.services import get_services

__all__ = ["dev_command", "seed_demo_command", "ussd_sim_command"]


@click.command("seed-demo")
@with_appcontext
@click.option("--beneficiaries", type=int, default=1000, show_default=True)
@click.option("--seed", type=int, default=2021, show_default=True, help="Same seed, same people.")
def seed_demo_command(beneficiaries: int, seed: int) -> None:
    """Add realistic synthetic beneficiaries, grants and grant histories, for demos and benchmarks."""
    started = time.monotonic()
    with get_services().db.session() as session:
        added = seed_demo(session, beneficiaries, seed=seed, today=date.today())
    click.echo(f"added {added} beneficiaries in {time.monotonic() - started:.1f}s")
