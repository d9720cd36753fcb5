"""The optional state file: loaded at start, saved atomically after writes (at most every ~2 s) and at stop.

So a demo survives a restart: records, id counters, events and issued tokens (a client's cached access token
keeps working). Atomic: write a temporary file in the same folder, fsync, then os.replace().
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


class StateFile:
    def __init__(self, path: str | os.PathLike[str], store: Any, tokens: Any, interval: float = 2.0) -> None:
        self.path = Path(path)
        self._store = store
        self._tokens = tokens
        self._interval = interval
        self._saved_version = -1
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._save_lock = threading.Lock()

    def load(self) -> bool:
        """Restore from the file when it exists; returns whether it did."""
        if not self.path.exists():
            return False
        data = json.loads(self.path.read_text(encoding="utf-8"))
        self._store.restore(data["store"])
        self._tokens.restore(data.get("tokens", {}))
        self._saved_version = self._store.version
        logger.info("sandbox state loaded from %s", self.path)
        return True

    def save(self) -> None:
        with self._save_lock:
            with self._store.lock:
                version = self._store.version
                data = {"store": self._store.snapshot(), "tokens": self._tokens.snapshot(), "saved_at": time.time()}
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    json.dump(data, handle)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            self._saved_version = version

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="zoho-sandbox-state", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
        self.save()

    def _run(self) -> None:
        last = 0.0
        while not self._stop.wait(0.25):
            if self._store.version != self._saved_version and time.monotonic() - last >= self._interval:
                try:
                    self.save()
                except OSError:
                    logger.exception("could not save sandbox state to %s", self.path)
                last = time.monotonic()
