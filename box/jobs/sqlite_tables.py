"""The box's tables on the standard library's sqlite3: rows as dicts, looked up, inserted, updated and upserted
by primary key.

The box used sqlite-utils for this; with its command-line and plugin dependencies (click, dateutil, pluggy) it
cost the daemon about 6 MB of resident memory, a tenth of its budget on a Pi, for the dozen calls below. The
files stay plain SQLite, so databases made by older boxes open unchanged.
"""

import sqlite3

SQL_TYPES = {int: "INTEGER", str: "TEXT", float: "FLOAT", bytes: "BLOB"}


class NotFoundError(LookupError):
    """No row has that primary key."""


def _name(identifier: str) -> str:
    """An identifier quoted for SQL; our table and column names are constants, this keeps them so."""
    return '"%s"' % identifier.replace('"', '""')


class Inserted:
    def __init__(self, last_pk) -> None:
        self.last_pk = last_pk


class Table:
    def __init__(self, db: "Database", name: str) -> None:
        self.db = db
        self.name = name

    def _rows(self, sql: str, parameters=()) -> list:
        cursor = self.db.conn.execute(sql, list(parameters))
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    @property
    def pk(self) -> str:
        primary = [row["name"] for row in self._rows("PRAGMA table_info(%s)" % _name(self.name)) if row["pk"]]
        return primary[0] if len(primary) == 1 else "rowid"

    @property
    def columns_dict(self) -> dict:
        return {row["name"]: row["type"] for row in self._rows("PRAGMA table_info(%s)" % _name(self.name))}

    @property
    def count(self) -> int:
        return self.db.conn.execute("SELECT count(*) FROM %s" % _name(self.name)).fetchone()[0]

    def create(self, columns: dict, pk: str, not_null=()) -> None:
        parts = []
        for column, kind in columns.items():
            part = "%s %s" % (_name(column), SQL_TYPES[kind])
            if column == pk:
                part += " PRIMARY KEY"
            elif column in not_null:
                part += " NOT NULL"
            parts.append(part)
        with self.db.conn:
            self.db.conn.execute("CREATE TABLE %s (%s)" % (_name(self.name), ", ".join(parts)))

    def create_index(self, columns: list) -> None:
        index = "idx_%s_%s" % (self.name, "_".join(columns))
        with self.db.conn:
            self.db.conn.execute(
                "CREATE INDEX %s ON %s (%s)" % (_name(index), _name(self.name), ", ".join(map(_name, columns)))
            )

    def add_column(self, column: str, kind) -> None:
        with self.db.conn:
            self.db.conn.execute("ALTER TABLE %s ADD COLUMN %s %s" % (_name(self.name), _name(column), SQL_TYPES[kind]))

    def rows_where(self, where: str = "", where_args=(), order_by: str = "", limit: int = 0) -> list:
        """Rows as dicts. `where` and `order_by` are SQL written by the caller, never by a user; values go in
        `where_args`."""
        sql = "SELECT * FROM %s" % _name(self.name)
        if where:
            sql += " WHERE " + where
        if order_by:
            sql += " ORDER BY " + order_by
        if limit:
            sql += " LIMIT %d" % limit
        return self._rows(sql, where_args)

    def get(self, key) -> dict:
        rows = self.rows_where("%s = ?" % _name(self.pk), [key])
        if not rows:
            raise NotFoundError("no row %r in %s" % (key, self.name))
        return rows[0]

    def insert(self, record: dict) -> Inserted:
        columns = list(record)
        with self.db.conn:
            cursor = self.db.conn.execute(
                "INSERT INTO %s (%s) VALUES (%s)"
                % (_name(self.name), ", ".join(map(_name, columns)), ", ".join("?" for _ in columns)),
                [record[column] for column in columns],
            )
        pk = self.pk
        return Inserted(record.get(pk, cursor.lastrowid))

    def update(self, key, fields: dict) -> None:
        """Change some fields of one row; NotFoundError when there is no such row."""
        if not fields:
            self.get(key)
            return
        assignments = ", ".join("%s = ?" % _name(column) for column in fields)
        with self.db.conn:
            cursor = self.db.conn.execute(
                "UPDATE %s SET %s WHERE %s = ?" % (_name(self.name), assignments, _name(self.pk)),
                [*fields.values(), key],
            )
        if cursor.rowcount == 0:
            raise NotFoundError("no row %r in %s" % (key, self.name))

    def upsert(self, record: dict, pk: str) -> None:
        columns = list(record)
        changes = ", ".join("%s = excluded.%s" % (_name(column), _name(column)) for column in columns if column != pk)
        with self.db.conn:
            self.db.conn.execute(
                "INSERT INTO %s (%s) VALUES (%s) ON CONFLICT(%s) DO UPDATE SET %s"
                % (
                    _name(self.name),
                    ", ".join(map(_name, columns)),
                    ", ".join("?" for _ in columns),
                    _name(pk),
                    changes,
                ),
                [record[column] for column in columns],
            )

    def delete(self, key) -> None:
        with self.db.conn:
            self.db.conn.execute("DELETE FROM %s WHERE %s = ?" % (_name(self.name), _name(self.pk)), [key])


class Database:
    """One connection, used by one thread (the store's owner)."""

    def __init__(self, path: str) -> None:
        self.conn = sqlite3.connect(str(path))

    def __getitem__(self, name: str) -> Table:
        return Table(self, name)

    def table_names(self) -> list:
        return [row[0] for row in self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]

    def enable_wal(self) -> None:
        self.conn.execute("PRAGMA journal_mode=wal")

    def execute(self, sql: str, parameters=()) -> sqlite3.Cursor:
        return self.conn.execute(sql, list(parameters))

    def close(self) -> None:
        self.conn.close()
