"""How a search is served to workers, and what a worker must share with its chief to join."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass

HEARTBEAT_SECONDS = 5.0  # a worker tells its chief this often that it is alive and on its trial
WORKER_RPC_TIMEOUT = 600  # a worker whose chief is gone gives up after 10 minutes (KerasTuner waits an hour)


@dataclass(frozen=True)
class Distribution:
    """Where the chief listens, how many workers it starts on this machine, and how many CPU threads each
    of their trials gets (`threads`; default: the cores shared out)."""

    address: str = "127.0.0.1:0"  # host:port; port 0 picks a free one
    local_workers: int = 0
    heartbeat_timeout: float = 120.0
    threads: int | None = None

    def threads_per_worker(self) -> int | None:
        """CPU threads for each local worker's trials, so N workers share the cores instead of fighting."""
        if not self.local_workers:
            return None
        return self.threads or max(1, (os.cpu_count() or 1) // self.local_workers)


def search_key(resolved_space: dict, data_fingerprint: str) -> str:
    """What a worker must share with the chief: the resolved space (seed included) and the data split."""
    text = json.dumps(resolved_space, sort_keys=True, default=str) + data_fingerprint
    return hashlib.sha256(text.encode()).hexdigest()[:16]
