"""The application factory, read as a table of contents."""

from __future__ import annotations

from flask import Flask

from config import load_settings
from config.logging import configure_logging
from gateway import api, auth, cli, console, services, webhooks


def create_app(overrides: dict | None = None) -> Flask:
    """Build the gateway. `overrides` (tests, tools) take precedence over the environment."""
    settings = load_settings(**(overrides or {}))
    configure_logging(settings.log_level)
    app = Flask(__name__)
    app.config.update(SECRET_KEY=settings.secret_key or "development-only-secret", TESTING=settings.app_env == "test")
    services.init_app(app, settings)
    auth.init_app(app, settings)
    webhooks.init_app(app)
    console.init_app(app)
    api.init_app(app)
    cli.init_app(app)
    return app
