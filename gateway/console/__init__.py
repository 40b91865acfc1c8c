"""The staff console: server-rendered pages that work on a slow connection, behind a staff login.

One blueprint; each module of this package adds the routes of one area (`auth`: login, logout, the start page).
"""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("console", __name__)

from gateway.console import auth  # noqa: E402,F401  (attaches its routes to bp)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
