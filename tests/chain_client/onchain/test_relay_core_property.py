"""The relayer's decisions (RelayCore, sans-I/O) against a simulated node that goes away, loses transactions,
its pool or its receipts: every job ends on chain, each mined exactly once, no two in flight share a nonce."""

from hypothesis import given, settings
from hypothesis import strategies as st

from chain_client.relayer import Check, CheckEffect, Job, RelayCore, Sign, State, SyncNonce


class SimNode:
    """A node with a pool: transactions mine in nonce order; faults come from the drawn script."""

    def __init__(self, faults: list[str]) -> None:
        self.faults = faults
        self.mined: dict[int, str] = {}  # nonce -> job id
        self.pool: dict[int, tuple[str, bytes]] = {}
        self.receipts: dict[bytes, int] = {}  # tx hash -> status

    def fault(self) -> str:
        return self.faults.pop() if self.faults else "ok"

    def count(self) -> int:
        return len(self.mined)

    def send(self, job_id: str, nonce: int, tx_hash: bytes) -> str:
        if nonce < self.count():
            return "nonce too low"
        self.pool[nonce] = (job_id, tx_hash)
        while self.count() in self.pool:
            mined_id, mined_hash = self.pool.pop(self.count())
            self.mined[self.count()] = mined_id
            self.receipts[mined_hash] = 1
        return "ok"


def drive(core: RelayCore, node: SimNode, steps: int = 3000) -> None:
    now = 0.0
    for _ in range(steps):
        if core.idle():
            return
        now += 0.5
        fault = node.fault()
        if fault == "restart":  # a node restarted from its saved chain: the pool is gone
            node.pool.clear()
        if fault == "forget":  # ... or without its receipts: only the contract can tell what happened
            node.receipts.clear()
        actions = core.due(now)
        if fault == "down" and actions:
            core.unavailable(now)
            continue
        in_flight = [a.job.nonce for a in actions if isinstance(a, Check)]
        assert len(in_flight) == len(set(in_flight)), "two transactions in flight share a nonce"
        for action in actions:
            if isinstance(action, SyncNonce):
                core.nonce_synced(node.count() + len(node.pool))
            elif isinstance(action, Sign):
                job = action.job
                tx_hash = b"%s/%d/%d" % (job.id.encode(), action.nonce, job.fee_level)
                core.signed(job, action.nonce, tx_hash, tx_hash, now)
                if fault != "drop":
                    answer = node.send(job.id, action.nonce, tx_hash)
                    if answer == "ok":
                        core.broadcast_ok(job, now)
                    else:
                        core.broadcast_failed(job, answer, answer, now)
            elif isinstance(action, Check):
                job = action.job
                if job.tx_hash in node.receipts:
                    core.receipt(job, node.receipts[job.tx_hash], 1, 21_000)
                else:
                    core.not_mined(job, node.count(), now)
                    rebroadcast = job.state is State.SENT and core.should_rebroadcast(job, now)
                    if rebroadcast and node.send(job.id, job.nonce, job.tx_hash) == "ok":
                        core.broadcast_ok(job, now)
            elif isinstance(action, CheckEffect):
                core.effect(action.job, action.job.id in node.mined.values(), now)
        core.available()
    raise AssertionError("the relayer did not finish")


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 12),
    st.lists(st.sampled_from(["ok", "ok", "ok", "down", "drop", "restart", "forget"]), max_size=60),
)
def test_property_every_job_is_mined_exactly_once_whatever_the_node_does(count, faults):
    core = RelayCore()
    for i in range(count):
        core.add(Job("job-%02d" % i, "claim", "0x" + "00" * 20, b"", 100_000, {}))
    node = SimNode(list(reversed(faults)))
    drive(core, node)
    assert all(job.state is State.DONE for job in core.jobs.values())
    assert sorted(node.mined.values()) == sorted(core.jobs)  # each job mined once, none twice
