"""A throwaway PostgreSQL cluster for the tests: Debian's server binaries, one cluster per session.

initdb refuses to run as root, so as root the cluster belongs to the `postgres` user (runuser).
It listens on a unix socket in its own temporary directory and on 127.0.0.1 at a free port, with
fsync off (its data is thrown away), and it is stopped by its own `pg_ctl stop`, never by a
process-name match. Databases are cheap copies of a migrated template (CREATE DATABASE ... TEMPLATE).
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from tests.support.s3_server import free_port

_SERVER_BINARIES = "/usr/lib/postgresql/*/bin"
_START_TIMEOUT_S = 60


class PostgresUnavailable(Exception):
    """No PostgreSQL server binaries can be used here; the message says why and how to get them."""


def find_server_binaries() -> Path:
    """The bin directory of the newest Debian PostgreSQL server (initdb, pg_ctl), or PostgresUnavailable.

    Only Debian's versioned directories are searched: shims elsewhere on PATH are not what a fresh
    machine (CI) would have after `./run tests` installs the `postgresql` package.
    """
    found = [path.parent for path in Path("/").glob(_SERVER_BINARIES.lstrip("/") + "/initdb")
             if os.access(path, os.X_OK) and (path.parent / "pg_ctl").exists()]
    if not found:
        raise PostgresUnavailable(
            f"no initdb under {_SERVER_BINARIES}: install Debian's postgresql package "
            "(`./run tests` does so when it runs as root with apt)")
    return max(found, key=lambda path: _version_key(path.parent.name))


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", name)) or (0,)


@dataclass
class PostgresCluster:
    """A running throwaway cluster. `url(name)` is a libpq URL over TCP loopback; stop() ends it."""

    bin_dir: Path
    base_dir: Path          # holds data/, the socket and the log; removed by stop()
    port: int
    run_as: str | None      # "postgres" when we are root, else None (run as ourselves)
    user: str               # the cluster's superuser role

    @property
    def major_version(self) -> int:
        return _version_key(self.bin_dir.parent.name)[0]

    @property
    def data_dir(self) -> Path:
        return self.base_dir / "data"

    @property
    def log_path(self) -> Path:
        return self.base_dir / "server.log"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def admin(self, sql: str) -> None:
        """Run one statement (CREATE/DROP DATABASE, ...) as the superuser, outside a transaction."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(sql)

    def create_database(self, *, template: str | None = None, prefix: str = "t") -> str:
        """A new empty database (or a copy of `template`, which must have no open connections); its name."""
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        sql = f'CREATE DATABASE "{name}"'
        if template:
            # FILE_COPY (PostgreSQL 15+) copies a small template ~4x faster than the default WAL_LOG.
            sql += f' TEMPLATE "{template}"' + (" STRATEGY FILE_COPY" if self.major_version >= 15 else "")
        self.admin(sql)
        return name

    def drop_database(self, name: str) -> None:
        self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def pg_ctl(self, *arguments: str, check: bool = True) -> subprocess.CompletedProcess:
        # Never `restart` through here: the new server would keep our output pipes open (use restart()).
        return _run([str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), *arguments], self.run_as, check=check)

    def start(self) -> None:
        """Start the server (again) on its port and socket directory; RuntimeError with the log's tail if it fails."""
        options = " ".join([
            f"-p {self.port}", f"-k {self.base_dir}", "-c listen_addresses=127.0.0.1",
            "-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off", "-c max_connections=200",
        ])
        started = self.pg_ctl("-o", options, "-l", str(self.log_path), "-t", str(_START_TIMEOUT_S), "-w", "start",
                              check=False)
        if started.returncode != 0:
            log = self.log_path.read_text(errors="replace")[-2000:] if self.log_path.exists() else ""
            raise RuntimeError(f"PostgreSQL did not start (pg_ctl exit {started.returncode}):\n"
                               f"{started.stdout}{started.stderr}\n{log}")

    def restart(self) -> None:
        """Stop the server (fast: sessions are ended) and start it again on the same port."""
        self.pg_ctl("-m", "fast", "-w", "stop")
        self.start()

    def stop(self) -> None:
        """Stop the server (immediate: the data is thrown away) and remove its directory."""
        try:
            if (self.data_dir / "postmaster.pid").exists():
                self.pg_ctl("-m", "immediate", "-w", "stop", check=False)
        finally:
            shutil.rmtree(self.base_dir, ignore_errors=True)


def start_cluster() -> PostgresCluster:
    """initdb a new cluster in a fresh temporary directory and start it; the caller stops it.

    Raises PostgresUnavailable when no server binaries exist or (as root) there is no postgres
    user to run them, RuntimeError naming the log when the server does not start.
    """
    bin_dir = find_server_binaries()
    run_as = None
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            raise PostgresUnavailable("running as root and there is no `postgres` user to run initdb as") from None
        run_as = "postgres"
    # Not under pytest's tmp dir: as root that sits in a 0700 directory the postgres user cannot enter.
    base_dir = Path(tempfile.mkdtemp(prefix="series-pg-"))
    if run_as:
        os.chown(base_dir, owner.pw_uid, owner.pw_gid)
    user = run_as or pwd.getpwuid(os.geteuid()).pw_name
    cluster = PostgresCluster(bin_dir=bin_dir, base_dir=base_dir, port=free_port(), run_as=run_as, user=user)
    try:
        _run([str(bin_dir / "initdb"), "-D", str(cluster.data_dir), "--auth=trust", "--no-sync",
              "--encoding=UTF8", "--locale=C", "--username", user], run_as)
        cluster.start()
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _run(command: list[str], run_as: str | None, *, check: bool = True) -> subprocess.CompletedProcess:
    if run_as:
        command = ["runuser", "-u", run_as, "--", *command]
    result = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL, cwd="/")
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    return result
