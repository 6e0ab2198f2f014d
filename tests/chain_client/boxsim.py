"""A box as the network sees it, made with `wire/` directly (the box daemon does not produce receipts yet): it
signs telemetry samples and events in one chain and receipts in another, exactly as docs/topics.md says."""

import hashlib
import os

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from chain_client import attestation_weighing, verifier
from wire import keytext, receipt, topics
from wire.record_chain import ChainWriter

T0 = 1_800_000_000


class SimBox:
    def __init__(self, seed: bytes = b"") -> None:
        self.key = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"sim box " + seed).digest()) if seed \
            else Ed25519PrivateKey.generate()  # fmt: skip
        self.public = self.key.public_key().public_bytes_raw()
        self.box_id = keytext.box_id(self.public)
        self.telemetry = ChainWriter(topics.TELEMETRY_KIND, self.key, self.box_id)
        self.receipts = receipt.receipt_writer(self.key, self.box_id)
        self.prints = 0

    def entry(self) -> verifier.BoxEntry:
        return verifier.BoxEntry(self.box_id, self.public, "0x" + "11" * 20, "0x" + "22" * 20)

    def topic(self, name: str) -> str:
        return topics.topic(self.box_id, name)

    def sample(self, ts: int, job_id=None, hotend=(2050, 2050), bed=(600, 600)) -> tuple:
        """(topic, payload) of one telemetry sample."""
        body = {"type": "sample", "printer": "printing" if job_id else "ready", "hotend": list(hotend),
                "bed": list(bed) if bed is not None else None,
                "job": {"number": 1, "job_id": job_id, "line": 0, "lines": 0, "layer": None, "eta_s": None}
                if job_id else None}  # fmt: skip
        return self.topic(topics.TELEMETRY), self.telemetry.next_encoded(body, ts)[1]

    def event(self, ts: int, body: dict) -> tuple:
        return self.topic(topics.EVENT), self.telemetry.next_encoded(body, ts)[1]

    def print_job(
        self,
        job: verifier.JobEntry,
        start: int,
        seconds: int,
        every: int = 60,
        outcome: str = "done",
        lines=None,
        heat=True,
        license_id=None,
        material: str = "PLA",
        print_number=None,
        attestation=None,
    ) -> tuple:
        """The messages of one print: samples every `every` seconds from `start`, then its receipt. Returns
        (telemetry messages, (receipt topic, payload), receipt hash)."""
        messages = []
        first = self.telemetry.sequence + 1
        for ts in range(start, start + seconds + 1, every):
            heated = (2050, 2050) if heat else (210, 2050)
            messages.append(self.sample(ts, job.job_id, heated, (600, 600) if heat else (200, 600)))
        self.prints += 1
        made = receipt.Receipt(
            job_id=job.job_id, license_id=license_id or job.license_id or "cd" * 16,
            sealed_sha256=job.sealed_sha256, print_number=print_number or self.prints, started=start,
            ended=start + seconds, outcome=outcome, lines=job.lines if lines is None else lines, filament_mm=1000,
            firmware_name="Marlin 2.1", machine_type="Sim", material=material, telemetry_first=first,
            telemetry_last=self.telemetry.sequence, telemetry_last_hash=self.telemetry.head, attestation=attestation,
        )  # fmt: skip
        _signed, encoded = receipt.sign_receipt(self.receipts, made, start + seconds + 1)
        return messages, (self.topic(topics.RECEIPT), encoded), receipt.receipt_hash(encoded)


def new_job(lines: int = 1000, estimate_s: int = 3000) -> verifier.JobEntry:
    return verifier.JobEntry(os.urandom(16).hex(), os.urandom(32).hex(), "cd" * 16, lines, estimate_s)


def unattested(amount: int) -> int:
    """What a print without an edge attestation earns (docs/rewards.md, "Attested prints")."""
    return attestation_weighing.weighted(amount, attestation_weighing.UNATTESTED_PERMILLE)
