"""Persistence of the command gate (chain_client.commands.CommandGate): the last number run per operator key,
every result (so a duplicate gets the same result again, also after a restart), and the box's own sequence
numbers for results and status sessions. SQLite, WAL; owned by the fleet agent's thread."""

import json
import sqlite3

from wire import canonical
from wire.command_gate import CommandGate
from wire.record_chain import record_hash

MAX_RESULTS = 10_000  # older results are forgotten; their numbers stay below last_run, so they are still refused

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS last_run (key_id TEXT PRIMARY KEY, seq INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS results (id INTEGER PRIMARY KEY, key_id TEXT NOT NULL, seq INTEGER NOT NULL,"
    " command_hash TEXT NOT NULL, result TEXT NOT NULL, UNIQUE (key_id, seq))",
    "CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
)


class CommandLog:
    def __init__(self, path: str) -> None:
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        for statement in _SCHEMA:
            self._db.execute(statement)

    def close(self) -> None:
        self._db.close()

    def gate(self, box_id: str, operators: dict) -> CommandGate:
        """A gate loaded with what was stored; `remember` must be called for each result it produces."""
        last_run = dict(self._db.execute("SELECT key_id, seq FROM last_run"))
        results = {
            (key_id, seq): (command_hash, json.loads(result))
            for key_id, seq, command_hash, result in self._db.execute(
                "SELECT key_id, seq, command_hash, result FROM results")
        }  # fmt: skip
        return CommandGate(box_id, operators, last_run, results)

    def remember(self, gate: CommandGate, command: dict, result: dict) -> None:
        """Record a result in the gate and on disk, in one transaction."""
        key_id, sequence = command["key_id"], command["seq"]
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.execute(
                "INSERT INTO last_run (key_id, seq) VALUES (?, ?) ON CONFLICT (key_id) DO UPDATE"
                " SET seq = max(seq, excluded.seq)",
                (key_id, sequence),
            )
            self._db.execute(
                "INSERT OR REPLACE INTO results (key_id, seq, command_hash, result) VALUES (?, ?, ?, ?)",
                (key_id, sequence, record_hash(command), canonical.encode(result).decode()),
            )
            self._db.execute("DELETE FROM results WHERE id <= (SELECT max(id) FROM results) - ?", (MAX_RESULTS,))
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        gate.record(command, result)

    def next_number(self, name: str) -> int:
        """A persisted counter that only rises (result sequence numbers, status sessions)."""
        self._db.execute("BEGIN IMMEDIATE")
        self._db.execute(
            "INSERT INTO counters (name, value) VALUES (?, 1) ON CONFLICT (name) DO UPDATE SET value = value + 1",
            (name,),
        )
        (value,) = self._db.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
        self._db.execute("COMMIT")
        return value
