"""The store's tables on plain sqlite3: what the store relies on, and a database written by an older box."""

import sqlite3

import pytest

from box.jobs import sqlite_tables
from box.jobs.store import Store, UnknownJob


def test_rows_by_primary_key(tmp_path):
    db = sqlite_tables.Database(tmp_path / "t.sqlite")
    db["things"].create({"id": int, "name": str, "weight": float}, pk="id", not_null={"name"})
    first = db["things"].insert({"name": "spool", "weight": 1.5}).last_pk
    second = db["things"].insert({"name": "nozzle", "weight": 0.1}).last_pk
    assert (first, second) == (1, 2)
    db["things"].update(first, {"weight": 0.75})
    assert db["things"].get(first) == {"id": 1, "name": "spool", "weight": 0.75}
    assert [row["name"] for row in db["things"].rows_where("weight < ?", [1], order_by="id desc")] == [
        "nozzle",
        "spool",
    ]
    assert db["things"].count == 2
    with pytest.raises(sqlite_tables.NotFoundError):
        db["things"].get(3)
    with pytest.raises(sqlite_tables.NotFoundError):
        db["things"].update(3, {"weight": 1.0})
    with pytest.raises(sqlite3.IntegrityError):
        db["things"].insert({"weight": 2.0})  # a NOT NULL column left out
    assert db["things"].count == 2


def test_upsert_keeps_one_row_per_key(tmp_path):
    db = sqlite_tables.Database(tmp_path / "t.sqlite")
    db["settings"].create({"key": str, "value": str}, pk="key")
    db["settings"].upsert({"key": "tz", "value": "UTC"}, pk="key")
    db["settings"].upsert({"key": "tz", "value": "Europe/Berlin"}, pk="key")
    assert db["settings"].rows_where() == [{"key": "tz", "value": "Europe/Berlin"}]


def test_a_failed_transaction_leaves_the_table_as_it_was(tmp_path):
    db = sqlite_tables.Database(tmp_path / "t.sqlite")
    db["events"].create({"id": int, "message": str}, pk="id")
    with pytest.raises(RuntimeError), db.conn:
        db.execute("INSERT INTO events (message) VALUES (?)", ["half done"])
        raise RuntimeError("power cut")
    assert db["events"].count == 0


def test_a_store_written_before_keeps_its_jobs_and_gains_new_columns(tmp_path):
    """The tables an older box made (sqlite-utils' types, no report/facts/receipt columns) open unchanged."""
    path = tmp_path / "box.sqlite"
    old = sqlite3.connect(path)
    old.execute(
        "CREATE TABLE jobs (id INTEGER PRIMARY KEY, job_id TEXT NOT NULL, title TEXT, spool_path TEXT NOT NULL,"
        " state TEXT NOT NULL, reason TEXT, request TEXT, print_number INTEGER, source_lines INTEGER,"
        " lines_acknowledged INTEGER, last_source_line INTEGER, created_at FLOAT, updated_at FLOAT)"
    )
    old.execute("INSERT INTO jobs (job_id, title, spool_path, state) VALUES ('j1', 'Benchy', '/spool/j1', 'done')")
    old.commit()
    old.close()
    store = Store(str(path))
    assert store.job(1)["title"] == "Benchy"
    assert {"report", "facts", "receipt"} <= set(store.db["jobs"].columns_dict)
    with pytest.raises(UnknownJob, match="there is no job 2"):
        store.job(2)
    store.close()
