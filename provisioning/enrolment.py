"""Enrolment with the fleet CA, the box's side and the rule both sides apply: the box asks for a certificate with
a certificate signing request made from its own Ed25519 key, naming its box id and carrying the one-time
enrolment token and its claim code. A request is valid only when its common name is the box id of the key that
signed it, so no device can obtain a certificate under another box's identity without that box's key."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from wire import keytext

if TYPE_CHECKING:
    from cryptography import x509

# cryptography's x509 module costs the daemon about 9 MB of memory; it is imported where a request or
# certificate is made or read (enrolment, once in a box's life), not when the daemon starts.

MAX_REQUEST_BYTES = 16 * 1024


class EnrolmentError(ValueError):
    """A request or certificate that must not be used; the message says why."""


class EnrolmentRequest:
    def __init__(self, box_id: str, public_key: bytes, token: str, claim_code: str, pem: bytes) -> None:
        self.box_id = box_id
        self.public_key = public_key
        self.token = token
        self.claim_code = claim_code
        self.pem = pem


def make_request(box, token: str, claim_code: str) -> bytes:
    """The PEM request of `box` (provisioning.identity.BoxIdentity)."""
    if not token or not token.isascii() or len(token) > 128:
        raise EnrolmentError("the enrolment token must be the text the fleet operator gave (at most 128 characters)")
    from cryptography import x509
    from cryptography.x509.oid import AttributeOID, NameOID

    builder = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, box.box_id)]))
        .add_attribute(AttributeOID.CHALLENGE_PASSWORD, token.encode())
        .add_attribute(AttributeOID.UNSTRUCTURED_NAME, claim_code.encode())
    )
    return builder.sign(box.signing, None).public_bytes(serialization.Encoding.PEM)


def read_request(pem: bytes) -> EnrolmentRequest:
    """Check a request: well formed, signed by an Ed25519 key, common name equal to that key's box id."""
    if len(pem) > MAX_REQUEST_BYTES:
        raise EnrolmentError("the request is over %d bytes" % MAX_REQUEST_BYTES)
    from cryptography import x509
    from cryptography.x509.oid import AttributeOID, NameOID

    try:
        request = x509.load_pem_x509_csr(pem)
    except ValueError as exc:
        raise EnrolmentError("not a certificate signing request (PEM)") from exc
    key = request.public_key()
    if not isinstance(key, Ed25519PublicKey):
        raise EnrolmentError("the request must be made from the box's Ed25519 key")
    if not request.is_signature_valid:
        raise EnrolmentError("the request's signature does not verify")
    raw = key.public_bytes_raw()
    names = request.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    box_id = keytext.box_id(raw)
    if len(names) != 1 or names[0].value != box_id:
        raise EnrolmentError("the request names a box id that is not the id of its own key (%s)" % box_id)
    try:
        token = request.attributes.get_attribute_for_oid(AttributeOID.CHALLENGE_PASSWORD).value.decode()
        claim = request.attributes.get_attribute_for_oid(AttributeOID.UNSTRUCTURED_NAME).value.decode()
    except (x509.AttributeNotFound, UnicodeDecodeError) as exc:
        raise EnrolmentError("the request carries no enrolment token or claim code") from exc
    return EnrolmentRequest(box_id, raw, token, claim, pem)


def token_digest(token: str) -> str:
    """What a CA keeps of a token: its hash, never the token."""
    return hashlib.sha256(token.strip().encode()).hexdigest()


def check_certificate(box, certificate_pem: bytes, ca_pem: bytes) -> x509.Certificate:
    """The certificate the CA issued, checked before the box installs it: issued by that CA, for this box's
    key and box id."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    try:
        certificate = x509.load_pem_x509_certificate(certificate_pem)
        ca = x509.load_pem_x509_certificate(ca_pem)
    except ValueError as exc:
        raise EnrolmentError("not a PEM certificate") from exc
    try:
        certificate.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature) as exc:
        if _issued_by(ca, certificate):
            raise EnrolmentError("the two certificates are swapped: the box's certificate was given as the CA's "
                                 "and the CA's as the box's; give them the other way round") from exc  # fmt: skip
        raise EnrolmentError("the certificate was not issued by that fleet CA") from exc
    key = certificate.public_key()
    if not isinstance(key, Ed25519PublicKey) or key.public_bytes_raw() != box.signing_public:
        raise EnrolmentError("the certificate is not for this box's key")
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(names) != 1 or names[0].value != box.box_id:
        raise EnrolmentError("the certificate does not name this box (%s)" % box.box_id)
    return certificate


def _issued_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        certificate.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def private_key_pem_of(key) -> bytes:
    """A private key in PKCS#8 PEM, the form TLS libraries read."""
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())  # fmt: skip
