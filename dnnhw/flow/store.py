"""The result store: one JSON record per job key, under the build directory.

``<build_root>/store/<key[:2]>/<key>.json`` holds the record of a job that finished
``ok``; failed, timed-out and crashed jobs are not kept, so the next run tries them
again. Records are written to a temporary file and renamed into place, so a killed run
never leaves a half-written one, and a reader never sees one. The job's logs stay in
its directory (``<build_root>/jobs/...``), named by the record's ``log``.
"""

import json
import os
from pathlib import Path


__all__ = ["ResultStore"]


class ResultStore:
    """Records of finished jobs, by key.

    Members
    -------
    root : Path
        The store's directory.
    """

    def __init__(self, root):
        self.root = Path(root)

    def _path(self, key):
        if not key or not all(c in "0123456789abcdef" for c in key):
            raise ValueError(f"a store key is a hex digest, got {key!r}")
        return self.root / key[:2] / f"{key}.json"

    def get(self, key):
        """The record stored under ``key``, or ``None``."""
        path = self._path(key)
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return None

    def put(self, key, record):
        """Store ``record`` under ``key`` (atomically)."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
        tmp.write_text(json.dumps(record, indent=1, default=str) + "\n")
        os.replace(tmp, path)

    def __contains__(self, key):
        return self._path(key).is_file()

    def __len__(self):
        return sum(1 for _ in self.root.glob("??/*.json"))
