"""The worker's sweep keeps the dashboard's counts current: a recount once they are DASHBOARD_REFRESH_SECONDS old."""

from __future__ import annotations

from models.reports import dashboard, dashboard_counts_as_of
from notifications.sms.runtime import Runtime
from notifications.sms.worker import dashboard_pass
from tests.factories import register

HOUR = 3600.0


def test_the_sweep_recounts_the_dashboard_once_its_counts_are_old_enough(db, settings):
    register(db)
    patient = Runtime(settings.replace(dashboard_refresh_seconds=HOUR))
    eager = Runtime(settings.replace(dashboard_refresh_seconds=0))
    try:
        assert dashboard_pass(patient) == {"dashboard_recounted": 1}  # never counted: counted now
        with db.session() as session:
            counted_at = dashboard_counts_as_of(session)
        register(db)
        assert dashboard_pass(patient) == {}  # an hour has not passed: the counts stand
        with db.session() as session:
            assert dashboard(session, max_age=HOUR).registrations == 1
        assert dashboard_pass(eager) == {"dashboard_recounted": 1}
        with db.session() as session:
            assert dashboard(session, max_age=HOUR).registrations == 2
            assert dashboard_counts_as_of(session) > counted_at
    finally:
        for runtime in (patient, eager):
            runtime.db.dispose()
