"""Signed fleet commands, the box's side of the rules (sans-I/O): a command runs only when it is signed by an
operator key the box trusts, addressed to this box, numbered above the last command it ran from that sender,
and not expired. A duplicate gets its stored result again and is not run twice. Every refusal says why.

A command is an envelope of kind `cmd` whose body is `{"box_id", "name", "args"}`; its result is an envelope
of kind `cmd.result` signed by the box, whose body is `{"box_id", "command_key_id", "command_seq",
"outcome", "reason", "data"}` with outcome accepted, rejected, succeeded or failed.
"""

from wire import envelope
from wire.record_chain import record_hash

ACCEPTED, REJECTED, SUCCEEDED, FAILED = "accepted", "rejected", "succeeded", "failed"
COMMAND_KIND = "cmd"
RESULT_KIND = "cmd.result"
MAX_NAME = 64


class Verdict:
    """What to do with one incoming command: `run` it, `repeat` a stored result, or `reject` it (with `reason`)."""

    def __init__(self, action: str, reason: str = "", command=None, stored=None) -> None:
        self.action = action
        self.reason = reason
        self.command = command  # the verified body, when action == "run"
        self.stored = stored  # the earlier result, when action == "repeat"


class CommandGate:
    """`operators`: key id -> Ed25519 public key. `last_run`: key id -> last sequence run; `results`:
    (key id, sequence) -> (command hash, result envelope). The caller persists both (they are plain dicts)."""

    def __init__(self, box_id: str, operators: dict, last_run=None, results=None) -> None:
        self.box_id = box_id
        self.operators = operators
        self.last_run = last_run if last_run is not None else {}
        self.results = results if results is not None else {}

    def check(self, command, now: float) -> Verdict:
        if not isinstance(command, dict) or not isinstance(command.get("key_id"), str):
            return Verdict("reject", "not a signed command envelope")
        key_id = command["key_id"]
        public_key = self.operators.get(key_id)
        if public_key is None:
            return Verdict("reject", "operator key %r is not trusted by this box" % key_id[:64])
        try:
            body = envelope.verify(command, public_key, now)
        except envelope.EnvelopeError as exc:
            return Verdict("reject", str(exc))
        if command["kind"] != COMMAND_KIND:
            return Verdict("reject", "a %r envelope is not a command" % command["kind"][:64])
        if command["exp"] is None:
            return Verdict("reject", "a command must carry an expiry")
        if body.get("box_id") != self.box_id:
            return Verdict("reject", "the command is for box %r, not this one" % str(body.get("box_id"))[:64])
        name = body.get("name")
        if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME or not isinstance(body.get("args", {}), dict):
            return Verdict("reject", "a command body holds box_id, name (text) and args (object)")
        sequence = command["seq"]
        stored = self.results.get((key_id, sequence))
        if stored is not None:
            if stored[0] == record_hash(command):
                return Verdict("repeat", "duplicate: the stored result is sent again", stored=stored[1])
            return Verdict("reject", "another command already used number %d" % sequence)
        if sequence <= self.last_run.get(key_id, 0):
            return Verdict("reject", "replayed or out of order: number %d is not above %d, the last run from %s"
                           % (sequence, self.last_run.get(key_id, 0), key_id))  # fmt: skip
        return Verdict("run", command=body)

    def record(self, command: dict, result: dict) -> None:
        """Remember the result of a command that ran (or was refused after checks), so a duplicate repeats it."""
        key_id, sequence = command["key_id"], command["seq"]
        self.last_run[key_id] = max(sequence, self.last_run.get(key_id, 0))
        self.results[(key_id, sequence)] = (record_hash(command), result)


def command(box_id: str, name: str, args: dict, operator_key, key_id: str, now: int, sequence: int, expires: int):
    """An operator's signed command for one box: what `mipai-fleet` sends and the box's gate checks."""
    return envelope.sign(COMMAND_KIND, {"box_id": box_id, "name": name, "args": args}, operator_key, key_id, now,
                         sequence, expires)  # fmt: skip


def result(box_key, box_id: str, command: dict, outcome: str, reason: str, now: int, sequence: int, data=None):
    """The box's signed result for `command` (which may be malformed: only its key id and number are echoed)."""
    body = {
        "box_id": box_id,
        "command_key_id": str(command.get("key_id", ""))[:200] if isinstance(command, dict) else "",
        "command_seq": command.get("seq") if isinstance(command, dict) and isinstance(command.get("seq"), int) else -1,
        "outcome": outcome,
        "reason": reason,
        "data": data if data is not None else {},
    }
    return envelope.sign(RESULT_KIND, body, box_key, box_id, now, sequence)
