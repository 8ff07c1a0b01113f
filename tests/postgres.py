"""Test helper: a real, throw-away PostgreSQL server (the distribution's binaries), not a mock.

PostgreSQL refuses to run as root, so `initdb` and the server run as the unprivileged
`postgres` user (created by the distribution's package) through `runuser`, in a temporary
folder that user owns, listening on a Unix socket in that folder only (no TCP port). Where the
binaries, the user, runuser or psycopg are missing, `missing_reason()` says which, and the
tests that need a server are skipped with it (CI installs them, so CI never skips).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

BIN = Path(os.environ.get("RNNBENCH_PG_BIN", "/usr/lib/postgresql/15/bin"))
USER = "postgres"


def _runuser_prefix() -> list[str]:
    return [] if os.geteuid() != 0 else ["runuser", "-u", USER, "--"]


def missing_reason() -> str | None:
    """Why no PostgreSQL server can be started here (None when one can)."""
    for tool in ("initdb", "postgres"):
        if not (BIN / tool).is_file():
            return f"PostgreSQL server binaries not found in {BIN} (apt-get install postgresql)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(USER)
        except KeyError:
            return f"no unprivileged user {USER!r} to run the server as (PostgreSQL refuses root)"
        if shutil.which("runuser") is None:
            return "runuser not found (util-linux), needed to start PostgreSQL as a non-root user"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg not installed (pip install -e '.[postgres]')"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A running server; `url(db)` gives a postgresql:// URL over its Unix socket."""

    def __init__(self, root: Path, port: int, proc: subprocess.Popen, log):
        self.root, self.port, self.proc, self._log = root, port, proc, log
        self._count = 0

    def url(self, database: str = "postgres") -> str:
        """A URL for one database of this server (socket in the server's folder)."""
        return f"postgresql://{USER}@/{database}?host={self.root}&port={self.port}"

    def new_database(self) -> str:
        """Create a fresh, empty database; its URL."""
        import psycopg

        self._count += 1
        name = f"rnnbench_t{self._count}_{os.getpid()}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self) -> None:
        """Stop the server (fast shutdown) and remove its folder."""
        if self.proc.poll() is None:
            # runuser (as root) does not pass SIGINT on: signal the server's whole group.
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()
        shutil.rmtree(self.root, ignore_errors=True)


def start() -> Server:
    """initdb a cluster in a fresh folder and start a server on a socket there."""
    root = Path(tempfile.mkdtemp(prefix="rnnbench-pg-"))
    prefix = _runuser_prefix()
    if prefix:
        entry = pwd.getpwnam(USER)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    os.chmod(root, 0o755)
    data = root / "data"
    subprocess.run([*prefix, str(BIN / "initdb"), "-D", str(data), "-U", USER, "-A", "trust",
                    "-E", "UTF8", "--no-sync"], check=True, capture_output=True, timeout=120)
    port = _free_port()
    log = open(root / "server.log", "wb")  # noqa: SIM115 - the server's lifetime
    proc = subprocess.Popen(
        [*prefix, str(BIN / "postgres"), "-D", str(data), "-k", str(root), "-p", str(port),
         "-c", "listen_addresses=", "-c", "fsync=off", "-c", "max_connections=60"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    server = Server(root, port, proc, log)
    deadline = time.monotonic() + 60
    while not (root / f".s.PGSQL.{port}").exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            server.stop()
            raise RuntimeError("PostgreSQL did not start: "
                               + (root / "server.log").read_text(errors="replace")[-500:])
        time.sleep(0.1)
    _wait_ready(server)
    return server


def _wait_ready(server: Server) -> None:
    import psycopg

    for _ in range(100):
        try:
            with psycopg.connect(server.url(), connect_timeout=5):
                return
        except psycopg.OperationalError:
            time.sleep(0.1)
    raise RuntimeError("PostgreSQL accepted no connection")


@contextlib.contextmanager
def running() -> Iterator[Server]:
    """A server for the duration of the block."""
    server = start()
    try:
        yield server
    finally:
        server.stop()
