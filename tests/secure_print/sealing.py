"""Seal small jobs in tests with fresh keys."""

import io
import time

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from secure_print import seal
from secure_print.license import License
from secure_print.signer_key import SignerKey
from wire import keytext

GCODE = b"; a small part\nM140 S60\nM104 S210\nG28\n" + b"".join(
    b"G1 X%d.%03d Y%d.5 E%d.01\n" % (10 + i % 90, (i * 37) % 1000, 20 + i % 70, i) for i in range(3000)
)


class Box:
    def __init__(self) -> None:
        self.signing = Ed25519PrivateKey.generate()
        self.sealing = X25519PrivateKey.generate()
        self.box_id = keytext.box_id(self.signing.public_key().public_bytes_raw())
        self.sealing_public = self.sealing.public_key().public_bytes_raw()


def make_job(designer: SignerKey, box: Box, gcode: bytes = GCODE, certificate: bytes = b"", **terms) -> bytes:
    job_id, license_id, seed = seal.new_ids()
    now = int(time.time())
    fields = dict(
        license_id=license_id,
        job_id=job_id,
        designer=designer.public_text,
        boxes=[box.box_id],
        max_prints=3,
        not_before=now - 3600,
        not_after=now + 3600,
        watermark_seed=seed,
    )
    fields.update(terms)
    out = io.BytesIO()
    seal.seal(io.BytesIO(gcode), out, designer, [box.sealing_public], License(**fields), certificate=certificate)
    return out.getvalue()
