"""Run the `archsearch` command with one fault injected inside one state write.

    python tests/faults.py MODE FILE FRAGMENT COUNT MARK -- run SPACE ...

When the COUNT-th write of a state file named FILE whose content holds FRAGMENT is half written, the hook
records the temporary file it was writing in MARK, then either kills the process (MODE `kill`: SIGKILL, as
a power cut would) or fails the write as a full disk does (MODE `enospc`). The mark lets a test tell a
fault that hit from one that missed: the moment is chosen, not random.

A full disk needs no process of its own: a test may install `faulty_writer(...)` as `files._write_all` in
its own process (with monkeypatch) and run the command there.
"""

import errno
import os
import signal
import sys
from pathlib import Path

from search import files
from search.cli import app


def faulty_writer(mode: str, name: str, fragment: str, count: int, mark: Path, write_all):
    """`write_all` (files._write_all) with the fault described above injected."""
    assert mode in ("kill", "enospc")
    seen = 0

    def faulty(descriptor: int, payload: bytes) -> None:
        nonlocal seen
        target = os.readlink(f"/proc/self/fd/{descriptor}")
        if Path(target).name == f".{name}.tmp" and fragment.encode() in payload:
            seen += 1
            if seen == int(count):
                os.write(descriptor, payload[: len(payload) // 2])
                Path(mark).write_text(target)
                if mode == "kill":
                    os.kill(os.getpid(), signal.SIGKILL)
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        write_all(descriptor, payload)

    return faulty


def main() -> None:
    mode, name, fragment, count, mark, separator, *command = sys.argv[1:]
    assert separator == "--"
    files._write_all = faulty_writer(mode, name, fragment, int(count), Path(mark), files._write_all)
    sys.argv = ["archsearch", *command]
    app()


if __name__ == "__main__":
    main()
