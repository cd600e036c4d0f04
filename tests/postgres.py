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


@contextlib.contextmanager
def cluster(port: int) -> Iterator[str]:
    """A running cluster on 127.0.0.1:`port`; yields the folder its Unix socket is in (for `psql -h`, as
    the postgres user)."""
    bin_dir = binaries()
    assert bin_dir is not None
    folder = Path(tempfile.mkdtemp(prefix="archsearch-pg-"))  # under /tmp: the postgres user must reach it
    as_user: list[str] = []
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(folder, owner.pw_uid, owner.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    data = folder / "data"

    def run(*command) -> None:
        subprocess.run([*as_user, *map(str, command)], check=True, capture_output=True, text=True)

    try:
        # the socket trusts the postgres user, as Debian's cluster does; TCP asks a password, as a team's server does
        run(bin_dir / "initdb", "-D", data, "-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync")
        run(bin_dir / "pg_ctl", "-D", data, "-w", "-l", folder / "server.log", "-o",
            f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={folder} -c fsync=off", "start")
        yield str(folder)
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            run(bin_dir / "pg_ctl", "-D", data, "-m", "immediate", "stop")
        shutil.rmtree(folder, ignore_errors=True)
