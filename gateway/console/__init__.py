"""The staff console: server-rendered pages that work on a slow connection, behind a staff login.

One blueprint; each module of this package adds the routes of one area (`auth`: login, logout, the start page).
"""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("console", __name__)

from gateway.console import (  # noqa: E402  (each module attaches its routes to bp)
    audit,  # noqa: F401
    auth,  # noqa: F401
    beneficiaries,  # noqa: F401
    campaigns,  # noqa: F401
    dashboard,  # noqa: F401
    inbox,  # noqa: F401
    reports,  # noqa: F401
    staff,  # noqa: F401
)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
