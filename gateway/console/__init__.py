"""The staff console: server-rendered pages that work on a slow connection, behind a staff login.

Each module of this package is one area with its own blueprint (`auth`: login and logout; `dashboard`: the start
page; ...). `init_app` mounts them all under one `console` blueprint, so an endpoint is named
`console.<area>.<view>`: `url_for("console.beneficiaries.beneficiary", reference=...)`.
"""

from __future__ import annotations

from flask import Blueprint, Flask

from gateway.console import (
    audit,
    auth,
    beneficiaries,
    campaigns,
    checkins,
    corrections,
    dashboard,
    duplicates,
    inbox,
    phone,
    privacy,
    reports,
    staff,
)

CONSOLE_BLUEPRINT = "console"
# The console's areas: each module holds its routes on its own `bp`.
AREAS = (
    auth,
    dashboard,
    beneficiaries,
    campaigns,
    checkins,
    inbox,
    reports,
    staff,
    audit,
    privacy,
    corrections,
    duplicates,
    phone,
)


def init_app(app: Flask) -> None:
    # A parent made per application: the areas are registered on it afresh each time, so that tests can build
    # many applications in one process.
    console = Blueprint(CONSOLE_BLUEPRINT, __name__)
    for area in AREAS:
        console.register_blueprint(area.bp)
    app.register_blueprint(console)
