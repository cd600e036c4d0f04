"""A PostgreSQL server of a test's own, from Debian's `postgresql` package: a cluster made with initdb in a
fresh folder, listening on a free loopback port, stopped and removed when the test ends. As root it runs as
the package's `postgres` user (PostgreSQL refuses to run as root)."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path


def binaries() -> Path | None:
    """The folder of initdb and pg_ctl of the newest PostgreSQL installed, or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda path: int(Path(path).parts[-3]))
    return Path(found[-1]).parent if found else None


class Cluster:
    """A cluster of a test's own on 127.0.0.1:`port`, in a fresh folder under /tmp (the postgres user must
    reach it); `socket_dir` is where its Unix socket is (for `psql -h`, as the postgres user)."""

    def __init__(self, port: int):
        self.bin_dir, self.port = binaries(), port
        assert self.bin_dir is not None
        self.folder = Path(tempfile.mkdtemp(prefix="archsearch-pg-"))
        self.socket_dir, self.data = str(self.folder), self.folder / "data"
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.folder, owner.pw_uid, owner.pw_gid)
            self._as_user = ["runuser", "-u", "postgres", "--"]

    def _run(self, *command) -> None:
        subprocess.run([*self._as_user, *map(str, command)], check=True, capture_output=True, text=True)

    def create(self) -> None:
        # the socket trusts the postgres user, as Debian's cluster does; TCP asks a password, as a team's server does
        self._run(self.bin_dir / "initdb", "-D", self.data, "-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync")

    def start(self) -> None:
        self._run(self.bin_dir / "pg_ctl", "-D", self.data, "-w", "-l", self.folder / "server.log", "-o",
                  f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.folder} -c fsync=off", "start")

    def stop(self) -> None:
        """Stop it as an outage does: at once, its clients' connections cut."""
        self._run(self.bin_dir / "pg_ctl", "-D", self.data, "-w", "-m", "immediate", "stop")

    def psql(self, *statements: str) -> None:
        commands = [arg for statement in statements for arg in ("-c", statement)]
        self._run("psql", "-h", self.socket_dir, "-p", self.port, "-U", "postgres", "-v", "ON_ERROR_STOP=1", *commands)


@contextlib.contextmanager
def cluster(port: int) -> Iterator[Cluster]:
    """A running cluster, stopped and removed when the test ends."""
    made = Cluster(port)
    try:
        made.create()
        made.start()
        yield made
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            made.stop()
        shutil.rmtree(made.folder, ignore_errors=True)
