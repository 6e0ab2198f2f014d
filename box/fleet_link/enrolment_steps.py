"""The box's side of fleet enrolment, shared by `mipai-box enrol` and the dashboard: the request made from the
box's own key (with the token and the claim code), and installing the certificate the fleet CA issued."""

import os
import time

from box import data_dir
from provisioning import enrolment
from provisioning.claim_code import ClaimCodes
from secure_print.signer_key import write_secret_file

TOKEN_FILE = "enrolment_token"  # where the first-boot file leaves the token
MAX_PEM_BYTES = 64 * 1024


def stored_token(root: str):
    """The token the first-boot file left, or None."""
    try:
        with open(os.path.join(root, TOKEN_FILE)) as handle:
            return handle.read(256).strip() or None
    except FileNotFoundError:
        return None


def request(root: str, box, token: str) -> bytes:
    """The PEM request for the fleet CA. Raises EnrolmentError for a token that cannot be one."""
    code, _expires = ClaimCodes(os.path.join(root, "claim_code.json")).current(time.time())
    return enrolment.make_request(box, token.strip(), code)


def install(root: str, box, certificate: bytes, ca: bytes) -> None:
    """Check the issued certificate (from that CA, for this key and box id) and keep it, the CA and the box's
    key in PEM (mode 0600) for the agent's mutual TLS. Raises EnrolmentError; nothing is written then."""
    if len(certificate) > MAX_PEM_BYTES or len(ca) > MAX_PEM_BYTES:
        raise enrolment.EnrolmentError("a certificate file is over %d bytes" % MAX_PEM_BYTES)
    enrolment.check_certificate(box, certificate, ca)
    files = data_dir.fleet_tls_files(root)
    os.makedirs(os.path.dirname(files["box.crt"]), mode=0o700, exist_ok=True)
    for name, data in (("ca.crt", ca), ("box.crt", certificate)):
        with open(files[name] + ".new", "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(files[name] + ".new", files[name])
    if os.path.exists(files["box.key"]):
        os.unlink(files["box.key"])
    write_secret_file(files["box.key"], enrolment.private_key_pem_of(box.signing))
    token = os.path.join(root, TOKEN_FILE)
    if os.path.exists(token):
        os.unlink(token)  # spent


def enrolled(root: str) -> bool:
    return os.path.exists(data_dir.fleet_tls_files(root)["box.crt"])
