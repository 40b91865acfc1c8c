"""The floor of bench/sms.py (`--floor`), in a small form: it runs end to end and keeps its own promise.

A benchmark is a measurement, not a test: this checks only that the floor still measures what it says (the SDK loop's
own calls, each message claimed, sent exactly once and recorded accepted), never how fast it was.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[3]
MESSAGES = 300
BATCH_SIZE = 100
# Seconds the whole run may take: the emulator's start, three phases of a few calls each, the worker's start.
RUN_TIMEOUT_SECONDS = 120
RESULTS_LINE = re.compile(r"^results: (\S+)$", re.MULTILINE)


def test_the_floor_sends_the_loops_calls_each_message_once_and_records_every_one_accepted():
    # Its own embedded Redis and SQLite file: nothing of the test run's own databases is touched.
    env = {key: value for key, value in os.environ.items() if key not in ("REDIS_URL", "DATABASE_URL")}
    command = [
        sys.executable,
        "bench/sms.py",
        "--floor",
        "--distinct-texts",
        "1",
        "--latency",
        "0",
        "-n",
        str(MESSAGES),
        "--batch-size",
        str(BATCH_SIZE),
        "--timeout",
        "60",
    ]
    run = subprocess.run(
        command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_SECONDS, check=False
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    results = PROJECT_ROOT / RESULTS_LINE.search(run.stdout)[1]
    try:
        [scenario] = json.loads(results.read_text())["scenarios"]
    finally:
        results.unlink()
    assert scenario["notes"] == []
    floor = scenario["emulator_floor"]
    assert floor["requests"] == MESSAGES // BATCH_SIZE  # the loop's calls, one text to a full batch each
    assert (floor["messages"], floor["duplicates"], floor["missing"], floor["unexpected"]) == (MESSAGES, 0, 0, 0)
    assert floor["recorded_accepted"] == MESSAGES
    assert floor["exact"] is True
    assert scenario["emulator_baseline"]["exact"] is True and scenario["emulator_gateway"]["exact"] is True
    assert scenario["floor_seconds"] > 0 and scenario["floor_ratio"] > 0
