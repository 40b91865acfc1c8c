"""The application factory, read as a table of contents."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

from flask import Flask

from config import DEVELOPMENT, load_settings
from config.logging import configure_logging
from gateway import api, assets, auth, cli, console, health, metrics, security, services, webhooks

# The one command that runs a development gateway without APP_ENV: `flask --app wsgi dev` brings up the local
# stack and sets APP_ENV=development for the processes it starts. Every other process without APP_ENV is production.
DEV_COMMAND = "dev"
# Options of the `flask` command that take a value, skipped to find the command name.
FLASK_OPTIONS_WITH_VALUE = frozenset({"--app", "-A", "--env-file", "-e"})


def create_app(overrides: dict | None = None) -> Flask:
    """Build the gateway. `overrides` (tests, tools) take precedence over the environment."""
    settings = load_settings(**{**environment_default(sys.argv), **(overrides or {})})
    configure_logging(settings.log_level, settings.log_format)
    app = Flask(__name__)
    app.config.update(SECRET_KEY=settings.secret_key or "development-only-secret", TESTING=settings.app_env == "test")
    services.init_app(app, settings)
    security.init_app(app, settings)
    assets.init_app(app)
    auth.init_app(app, settings)
    health.init_app(app)
    webhooks.init_app(app)
    metrics.init_app(app)
    console.init_app(app)
    api.init_app(app)
    cli.init_app(app)
    return app


def environment_default(argv: Sequence[str]) -> dict:
    """`{"app_env": "development"}` for a `flask ... dev` process started without APP_ENV, else nothing.

    The `flask` command builds the app before it runs a command, so the dev command cannot set APP_ENV for its own
    process the way it does for its children.
    """
    if os.environ.get("APP_ENV") or not argv or _program(argv[0]) != "flask":
        return {}
    arguments = iter(argv[1:])
    for argument in arguments:
        if argument in FLASK_OPTIONS_WITH_VALUE:
            next(arguments, None)
        elif not argument.startswith("-"):
            return {"app_env": DEVELOPMENT} if argument == DEV_COMMAND else {}
    return {}


def _program(path: str) -> str:
    """`flask` for the `flask` script and for `python -m flask`."""
    program = Path(path)
    return program.parent.name if program.name == "__main__.py" else program.name
