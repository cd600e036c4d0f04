"""What produced a run: the space file's hash, the code version, the libraries, the machine, the seed.

Recorded as tags on every parent and trial run, so a result found in the store can be traced back
to the exact inputs and environment that made it.
"""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

LIBRARIES = ("archsearch", "tensorflow", "keras", "keras-tuner", "mlflow", "numpy", "pandas", "scikit-learn")


def file_hash(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _git(where: Path, *args: str) -> str:
    """git's output in `where`; raises OSError or SubprocessError outside a repository or without git."""
    return subprocess.run(["git", *args], cwd=where, capture_output=True, text=True, timeout=10, check=True).stdout.strip()


def git_commit(where: Path) -> str:
    """The commit of the repository holding `where`, with '+dirty' when it has uncommitted changes."""
    try:
        commit = _git(where, "rev-parse", "HEAD")
        return commit + ("+dirty" if _git(where, "status", "--porcelain", "--untracked-files=no") else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def first_commit(path: Path) -> dict[str, str] | None:
    """The commit that first added `path`, and its date: when a protocol was fixed. None outside a
    repository or while the file is not committed."""
    try:
        log = _git(path.parent, "log", "--diff-filter=A", "--format=%H %cI", "--", path.name).split()
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": log[-2], "date": log[-1]} if len(log) >= 2 else None


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def machine() -> str:
    """The machine a study ran on, for its methods record, and a trial's measured latency ran on."""
    return f"{platform.machine()}, {os.cpu_count()} CPUs ({cpu_name()}), {platform.system()} {platform.release()}"


def cpu_name() -> str:
    """The processor's model name (Linux's /proc/cpuinfo; elsewhere what `platform` knows)."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def provenance_tags(space_path: Path, seed: int) -> dict[str, str]:
    space_path = Path(space_path)
    tags = {
        "space_file": str(space_path),
        "space_hash": file_hash(space_path),
        "git_commit": git_commit(Path(__file__).resolve().parent),
        "seed": str(seed),
        "hardware": machine(),
    }
    tags |= {f"version.{name}": version for name, version in library_versions().items()}
    # MLflow's own source tags, so the UI's "Source" and "Version" columns say what ran.
    tags |= {"mlflow.source.name": str(space_path), "mlflow.source.type": "LOCAL", "mlflow.source.git.commit": tags["git_commit"]}
    return tags
