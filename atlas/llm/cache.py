"""Model answers kept on disk as soon as they are made, keyed by a hash of (model, prompt).

An interrupted labelling run resumes where it stopped, and relabelling a topic whose
evidence did not change costs nothing. Only hashes and answers are stored, never prompts.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from pathlib import Path


class AnswerCache:
    """Safe across threads: the labelling threads share one connection, one statement at a time."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, timeout=30, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, answer TEXT NOT NULL)")
        self._lock = threading.Lock()

    @staticmethod
    def key(model_identity: str, prompt: str) -> str:
        return hashlib.blake2b(f"{model_identity}\0{prompt}".encode(), digest_size=16).hexdigest()

    def get(self, key: str) -> str | None:
        with self._lock:
            row = self.db.execute("SELECT answer FROM answers WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def put(self, key: str, answer: str) -> None:
        with self._lock, self.db:
            self.db.execute("INSERT OR REPLACE INTO answers VALUES (?, ?)", (key, answer))

    def close(self) -> None:
        self.db.close()
