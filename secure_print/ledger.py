"""The persistent print counter: one row per print, with the box's signed usage record, in SQLite."""

import sqlite3

from secure_print.errors import LicenseError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS prints (
    license_id TEXT NOT NULL,
    print_number INTEGER NOT NULL,
    job_id TEXT NOT NULL,
    usage_record TEXT NOT NULL,
    PRIMARY KEY (license_id, print_number)
)
"""


class PrintLedger:
    """Counts prints per license. A print is recorded (counter and usage record in one transaction) before the
    first line streams, so a crash or a pulled plug can never give a print back."""

    def __init__(self, path: str) -> None:
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def prints_done(self, license_id: str) -> int:
        row = self._db.execute("SELECT MAX(print_number) FROM prints WHERE license_id = ?", (license_id,)).fetchone()
        return row[0] or 0

    def total_prints(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM prints").fetchone()[0]

    def record_print(self, license_id: str, job_id: str, max_prints, make_usage_record) -> int:
        """Take the next print number of `license_id`, or raise LicenseError when none is left.

        `make_usage_record(print_number, sequence)` returns the signed usage record (text) stored with it.
        """
        self._db.execute("BEGIN IMMEDIATE")
        try:
            number = self.prints_done(license_id) + 1
            if max_prints is not None and number > max_prints:
                raise LicenseError(
                    "no prints left: this box has made %d of the %d prints the license allows"
                    % (number - 1, max_prints)
                )
            record = make_usage_record(number, self.total_prints() + 1)
            self._db.execute(
                "INSERT INTO prints (license_id, print_number, job_id, usage_record) VALUES (?, ?, ?, ?)",
                (license_id, number, job_id, record),
            )
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        return number

    def counts(self) -> list:
        """[(license id, prints made)] for every license this box has printed, most prints first."""
        rows = self._db.execute(
            "SELECT license_id, MAX(print_number) FROM prints GROUP BY license_id ORDER BY 2 DESC, 1 LIMIT 200"
        )
        return [(row[0], row[1]) for row in rows]

    def usage_records(self, license_id: str) -> list:
        rows = self._db.execute(
            "SELECT usage_record FROM prints WHERE license_id = ? ORDER BY print_number", (license_id,)
        )
        return [row[0] for row in rows]
