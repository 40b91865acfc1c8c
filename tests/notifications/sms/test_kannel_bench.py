"""The Kannel scenario of bench/sms.py, in its smallest form: it runs end to end and every message arrives once.

A benchmark is a measurement, not a test: this checks only that the scenario still works (the private Kannel starts,
both phases send every message exactly once through it, the figures are written), never how fast it was.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from devtools.kannel import FAKESMSC
from tests.kannel import kannel_binaries

PROJECT_ROOT = Path(__file__).resolve().parents[3]
MESSAGES = 30
# Seconds the whole run may take: Kannel's start, two phases of MESSAGES sendsms calls, the workers' start.
RUN_TIMEOUT_SECONDS = 150
RESULTS_LINE = re.compile(r"^results: (\S+)$", re.MULTILINE)


def test_the_kannel_scenario_sends_every_message_once_in_both_phases():
    kannel_binaries()
    if not Path(FAKESMSC).exists():
        reason = "Kannel's fake SMSC is not installed (apt-get install kannel-extras)"
        if os.environ.get("REQUIRE_KANNEL") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    # Its own embedded Redis and SQLite file: nothing of the test run's own databases is touched.
    env = {key: value for key, value in os.environ.items() if key not in ("REDIS_URL", "DATABASE_URL")}
    command = [sys.executable, "bench/sms.py", "--kannel", "-n", str(MESSAGES), "--timeout", "60"]
    run = subprocess.run(
        command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_SECONDS, check=False
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    results = PROJECT_ROOT / RESULTS_LINE.search(run.stdout)[1]
    try:
        [scenario] = json.loads(results.read_text())["scenarios"]
    finally:
        results.unlink()
    assert scenario["name"] == "kannel"
    assert scenario["notes"] == []
    for phase in ("emulator_baseline", "emulator_gateway"):  # what the fake SMSC received in each phase
        assert scenario[phase] == {
            "requests": MESSAGES,
            "messages": MESSAGES,
            "duplicates": 0,
            "missing": 0,
            "unexpected": 0,
            "exact": True,
        }
    assert scenario["gateway_run"]["statuses"] == {"submitted": MESSAGES}
    assert scenario["gateway_seconds"] > 0 and scenario["baseline_seconds"] > 0
