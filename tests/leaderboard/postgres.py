"""A throwaway PostgreSQL cluster for the tests: initdb + pg_ctl (as the ``postgres`` user when run as root),
listening on 127.0.0.1 only, on a free port, fsync off; stopped and deleted at the end."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.leaderboard.helpers import free_port


def pg_bin() -> Path | None:
    """The newest installed PostgreSQL server binaries (Debian layout, or on PATH)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _run_as() -> str | None:
    """initdb refuses root: run the server as ``postgres`` then (None: run as ourselves)."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return "missing"
    return "postgres"


@dataclass
class Cluster:
    bindir: Path
    base: Path
    port: int
    user: str | None

    @property
    def data(self) -> Path:
        return self.base / "data"

    @property
    def log(self) -> Path:
        return self.base / "log" / "postgres.log"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def _pg(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.bindir / args[0]), *args[1:]], user=self.user, capture_output=True,
                              text=True, timeout=timeout, cwd=self.base, check=False)

    def start(self) -> None:
        options = (f"-h 127.0.0.1 -p {self.port} -k {self.base} -c fsync=off -c synchronous_commit=off "
                   "-c full_page_writes=off -c max_connections=300")
        done = self._pg("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start")
        if done.returncode != 0:
            raise RuntimeError(f"pg_ctl start failed: {done.stderr or done.stdout}\n{self.log.read_text()[-2000:]}")

    def stop(self, mode: str = "fast") -> None:
        self._pg("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def execute(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres",
                             autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql)  # type: ignore[arg-type]

    @contextlib.contextmanager
    def database(self) -> Iterator[str]:
        """A fresh, empty database for one test (dropped afterwards); yields its SQLAlchemy URL."""
        name = f"lb_{uuid.uuid4().hex[:12]}"
        self.execute(f"CREATE DATABASE {name}")
        try:
            yield self.url(name)
        finally:
            with contextlib.suppress(Exception):
                self.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def start_cluster(bindir: Path) -> Cluster:
    user = _run_as()
    base = Path(tempfile.mkdtemp(prefix="dpbench-pg-"))
    (base / "log").mkdir()
    if user:
        for path in (base, base / "log"):
            shutil.chown(path, user, user)
    cluster = Cluster(bindir, base, free_port(), user)
    done = cluster._pg("initdb", "-D", str(cluster.data), "-A", "trust", "-U", "postgres", "-E", "UTF8",
                       "--no-sync", "--no-instructions")
    if done.returncode != 0:
        shutil.rmtree(base, ignore_errors=True)
        raise RuntimeError(f"initdb failed: {done.stderr or done.stdout}")
    try:
        cluster.start()
    except Exception:
        shutil.rmtree(base, ignore_errors=True)
        raise
    return cluster


def stop_cluster(cluster: Cluster) -> None:
    cluster.stop()
    shutil.rmtree(cluster.base, ignore_errors=True)
