"""What the index operations report back: :class:`BuildReport`, :class:`VerifyReport`."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class BuildReport:
    """What :func:`~culvert_py.ops.build_index` did in this run.

    :ivar rows_scanned: primary rows read by this run (tombstones included)
    :ivar entries_written: index entries written by this run
    :ivar seconds: wall time of the run, grace period included
    :ivar shard: ``(i, n)``, the share of the plan this run took
    :ivar state_after: the index state when the run ended
    :ivar stale_removed: changeover entries the sweep repaired (see :mod:`culvert_py.ops.build`)
    :ivar bad_cells: cells of an adopted table that did not decode under their codec, per
        column (they read as NULL; a sample went to the rejects file)
    """

    rows_scanned: int
    entries_written: int
    seconds: float
    shard: tuple[int, int]
    state_after: str
    stale_removed: int = 0
    bad_cells: dict[str, int] = field(default_factory=dict)

    @property
    def rows_per_second(self) -> float:
        """Rows scanned per second of wall time."""
        return self.rows_scanned / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        """One line for humans."""
        i, n = self.shard
        stale = f", {self.stale_removed:,} stale entries repaired" if self.stale_removed else ""
        return (
            f"{self.rows_scanned:,} rows, {self.entries_written:,} entries in "
            f"{self.seconds:.1f} s ({self.rows_per_second:,.0f} rows/s), shard {i}/{n}"
            f"{stale}{_bad_text(self.bad_cells)}; index {self.state_after}"
        )


@dataclass
class VerifyReport:
    """What :func:`~culvert_py.ops.verify_index` found (and repaired).

    :ivar rows_checked: live primary rows whose expected entries were looked up
    :ivar entries_checked: entries of the index table checked against their rows
    :ivar missing: entries a live row should have and the index lacks
    :ivar orphan: entries no row owns (stale value, deleted row, undecodable key …)
    :ivar wrong_covered: verified entries whose covered values differ from the row's
    :ivar unverified_ok: unverified entries that match their row (correct; readers check them)
    :ivar repaired: problems fixed (with ``repair=True``)
    :ivar samples: a few offending entries per kind, as readable text
    :ivar seconds: wall time
    :ivar in_flight: entries their row does not own, not older than it and younger than the
        settle time, or suspects whose row kept changing: writes in progress, not errors
    :ivar unverified_orphan: unverified entries no row owns: what a crashed writer or the
        losing attempt of a write race leaves behind; readers check and drop them, so they
        cost scan time but are not errors (repair deletes them)
    """

    rows_checked: int = 0
    entries_checked: int = 0
    missing: int = 0
    orphan: int = 0
    wrong_covered: int = 0
    unverified_ok: int = 0
    repaired: int = 0
    samples: dict[str, list[str]] = field(default_factory=dict)
    seconds: float = 0.0
    in_flight: int = 0
    unverified_orphan: int = 0
    bad_cells: dict[str, int] = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        """Whether no problem was found (before any repair)."""
        return not (self.missing or self.orphan or self.wrong_covered)

    def summary(self) -> str:
        """One line for humans, then one line per sample."""
        checked = (
            f"{self.rows_checked:,} rows and {self.entries_checked:,} entries checked "
            f"in {self.seconds:.1f} s"
        )
        notes = [f"{n:,} {what}" for n, what in self._notes() if n]
        if self.clean:
            head = f"clean: {checked}"
        else:
            problems = [
                f"{self.missing:,} missing",
                f"{self.orphan:,} orphan",
                f"{self.wrong_covered:,} wrong covered",
            ]
            head = f"{', '.join(problems)}: {checked}"
        lines = [head + (f" ({'; '.join(notes)})" if notes else "") + _bad_text(self.bad_cells)]
        for kind, keys in self.samples.items():
            lines += [f"  {kind}: {k}" for k in keys]
        return "\n".join(lines)

    def _notes(self) -> list[tuple[int, str]]:
        return [
            (self.repaired, "repaired"),
            (self.unverified_ok, "unverified but matching"),
            (self.unverified_orphan, "unverified orphans"),
            (self.in_flight, "in flight"),
        ]


def _bad_text(bad_cells: dict[str, int]) -> str:
    if not bad_cells:
        return ""
    parts = ", ".join(f"{column} {n:,}" for column, n in sorted(bad_cells.items()))
    return f"; undecodable cells (read as NULL): {parts}"
