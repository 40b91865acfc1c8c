"""Operator commands: `flask --app wsgi <command>`, one module per feature.

Each command parses its arguments, calls one domain function and prints the answer.
"""

from __future__ import annotations

from flask import Flask

from gateway.cli.campaigns import campaigns_group
from gateway.cli.checkins import checkins_group
from gateway.cli.data import data_group
from gateway.cli.db import db_group
from gateway.cli.dev import dev_command, seed_demo_command, ussd_sim_command
from gateway.cli.grants import grants_group
from gateway.cli.sms import sms_group, worker_command
from gateway.cli.staff import staff_group

COMMANDS = (
    db_group,
    grants_group,
    sms_group,
    worker_command,
    staff_group,
    campaigns_group,
    checkins_group,
    dev_command,
    ussd_sim_command,
    seed_demo_command,
    data_group,
)


def init_app(app: Flask) -> None:
    for command in COMMANDS:
        app.cli.add_command(command)
