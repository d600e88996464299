"""A throwaway PostgreSQL cluster on this machine, for the tests and ``make bench``: ``initdb`` and ``pg_ctl`` in a
temporary directory, listening on a free loopback port only (no Unix socket), trust authentication for one
superuser, stopped and removed at the end.

The binaries are Debian's (``make postgres`` installs the ``postgresql`` package; they live in
``/usr/lib/postgresql/<version>/bin``) or on PATH. ``initdb`` refuses to run as root, so as root the cluster runs
as the ``postgres`` user that Debian's package creates (or ``nobody``), in a directory given to that user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

try:
    from bench.workload import free_port  # the tests
except ImportError:
    from workload import free_port  # bench/run.py, run with bench/ on its path

INSTALL_HINT = "PostgreSQL's initdb and pg_ctl were not found: `make postgres` installs Debian's postgresql package"
SUPERUSER = "fhirsvc"
HOST = "127.0.0.1"


def find_bin_dir() -> Path | None:
    """The directory holding initdb and pg_ctl: PATH first, else the newest /usr/lib/postgresql/<version>/bin."""
    found = shutil.which("initdb")
    if found and (Path(found).resolve().parent / "pg_ctl").exists():
        return Path(found).resolve().parent
    versions = [p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/initdb") if p.parts[-3].isdigit()]
    return max(versions, key=lambda p: int(p.parts[-2]), default=None)


def _os_user() -> str | None:
    """The user to run the server as: None (this user) unless root, then ``postgres`` or ``nobody``."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise RuntimeError("running as root, and neither a postgres nor a nobody user exists to run PostgreSQL as")


class Cluster:
    """One running cluster; ``url(database)`` connects as its superuser over TCP on loopback."""

    def __init__(self, bin_dir: Path, directory: Path, port: int, os_user: str | None):
        self.bin_dir = bin_dir
        self.directory = directory
        self.data = directory / "data"
        self.log = directory / "server.log"
        self.port = port
        self.os_user = os_user

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@{HOST}:{self.port}/{database}"

    def run(self, program: str, *args: str) -> subprocess.CompletedProcess:
        """Run one of the cluster's programs as the cluster's user; RuntimeError with its output if it fails."""
        command = [str(self.bin_dir / program), *args]
        if self.os_user is not None:
            command = ["runuser", "-u", self.os_user, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, cwd=self.directory)
        if done.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{program} {' '.join(args)} failed ({done.returncode}):\n{done.stdout}{done.stderr}"
                               f"{log}")
        return done

    def init(self) -> None:
        self.run("initdb", "-D", str(self.data), "-U", SUPERUSER, "--auth=trust", "--encoding=UTF8", "--no-locale",
                 "--no-sync")
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(f"\nlisten_addresses = '{HOST}'\nport = {self.port}\nunix_socket_directories = ''\n"
                       "max_connections = 200\nfsync = on\nsynchronous_commit = on\n")

    def start(self) -> None:
        self.run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: ``fast`` (clean) or ``immediate`` (as a crash: recovery at the next start)."""
        self.run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def running(self) -> bool:
        command = [str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "status"]
        if self.os_user is not None:
            command = ["runuser", "-u", self.os_user, "--", *command]
        return subprocess.run(command, capture_output=True).returncode == 0

    def create_database(self, name: str) -> str:
        """Create an empty database; return its URL."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


@contextmanager
def throwaway_cluster(bin_dir: Path | None = None) -> Iterator[Cluster]:
    """A new cluster, started; stopped and deleted at the end. RuntimeError with INSTALL_HINT without binaries."""
    bin_dir = bin_dir or find_bin_dir()
    if bin_dir is None:
        raise RuntimeError(INSTALL_HINT)
    os_user = _os_user()
    directory = Path(tempfile.mkdtemp(prefix="fhirsvc-pg-"))
    try:
        if os_user is not None:
            account = pwd.getpwnam(os_user)
            os.chown(directory, account.pw_uid, account.pw_gid)
        cluster = Cluster(bin_dir, directory, free_port(HOST), os_user)
        cluster.init()
        cluster.start()
        try:
            yield cluster
        finally:
            if cluster.running():
                cluster.stop("immediate")
    finally:
        shutil.rmtree(directory, ignore_errors=True)
