"""The rejects file of a load: one JSON object per bad record, appended in input order.

Each line is ``{"line": …, "raw": …, "reason": …}``. The file is created at the first
reject only, truncated when a run starts (to empty, or back to what its checkpoint counted),
and flushed before the checkpoint that counts its lines, so a crash loses none of them.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import IO

from culvert_py.errors import LoadError

log = logging.getLogger(__name__)


class RejectsFile:
    """Appends reject lines to ``path``; use it as a context manager, which closes it.

    :param path: the rejects file
    :ivar size: bytes in the file, as this run counts them
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.size = 0
        self._fh: IO[bytes] | None = None

    def truncate(self, keep: int) -> None:
        """Cut the file back to its first ``keep`` bytes (a missing file stays missing).

        :raises LoadError: when the file cannot be written
        """
        try:
            size = self.path.stat().st_size if self.path.exists() else 0
            if keep > size:
                log.warning("rejects file %s shorter than at the checkpoint", self.path)
                keep = size
            if size > keep:
                os.truncate(self.path, keep)
        except OSError as exc:
            raise LoadError(
                f"cannot write rejects file {str(self.path)!r}: {exc.strerror}"
            ) from exc
        self.size = keep

    def write(self, lines: list[bytes]) -> None:
        """Append reject lines (each ending in a line break), flushed.

        :raises LoadError: when the file cannot be written
        """
        if not lines:
            return
        try:
            if self._fh is None:
                self._fh = open(self.path, "ab")  # noqa: SIM115 - closed by close()
            self._fh.writelines(lines)
            # Flushed before the checkpoint that counts them, so a crash loses none of them.
            self._fh.flush()
        except OSError as exc:
            raise LoadError(
                f"cannot write rejects file {str(self.path)!r}: {exc.strerror}"
            ) from exc
        self.size += sum(len(line) for line in lines)

    def close(self) -> None:
        """Close the file, if it was opened."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __enter__(self) -> RejectsFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
