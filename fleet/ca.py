"""The fleet CA (a directory the operator keeps offline or on the fleet server): its Ed25519 key and certificate,
one-time enrolment tokens (only their hashes are kept), the register of enrolled boxes, and what the broker
needs: a server certificate, operator client certificates, and a Mosquitto configuration whose ACL lets each box
touch only its own topics."""

import datetime
import ipaddress
import json
import os
import secrets

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from provisioning import enrolment
from secure_print.signer_key import write_secret_file
from wire import topics

BOX_CERT_DAYS = 825
CA_DAYS = 3650
OPERATOR_PREFIX = "fleet-"  # operator client certificates are named fleet-NAME; box ids never contain "-"
VERIFIER_PREFIX = "verifier-"  # the network's verifiers (mipai-chain verify): read what boxes report, write rewards


class CAError(ValueError):
    """The CA cannot do what was asked; the message says why."""


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def _atomic_json(path: str, value) -> None:
    with open(path + ".new", "w") as handle:
        json.dump(value, handle, indent=1, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(path + ".new", path)


class FleetCA:
    def __init__(self, directory: str) -> None:
        self.directory = directory
        try:
            with open(self._path("ca.key"), "rb") as handle:
                self._key = serialization.load_pem_private_key(handle.read(), None)
            with open(self._path("ca.crt"), "rb") as handle:
                self.certificate = x509.load_pem_x509_certificate(handle.read())
        except FileNotFoundError:
            raise CAError("%s holds no fleet CA (run: mipai-fleet ca init --dir %s)" % (directory, directory)) from None

    def _path(self, name: str) -> str:
        return os.path.join(self.directory, name)

    @classmethod
    def init(cls, directory: str, name: str, now: datetime.datetime) -> "FleetCA":
        os.makedirs(directory, mode=0o700, exist_ok=True)
        if os.path.exists(os.path.join(directory, "ca.key")):
            raise CAError("%s already holds a fleet CA; it is never overwritten" % directory)
        key = Ed25519PrivateKey.generate()
        certificate = (
            x509.CertificateBuilder()
            .subject_name(_name(name))
            .issuer_name(_name(name))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .sign(key, None)
        )
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())  # fmt: skip
        write_secret_file(os.path.join(directory, "ca.key"), pem)
        with open(os.path.join(directory, "ca.crt"), "wb") as handle:
            handle.write(_pem(certificate))
        _atomic_json(os.path.join(directory, "tokens.json"), {})
        _atomic_json(os.path.join(directory, "boxes.json"), {})
        return cls(directory)

    # -- enrolment -------------------------------------------------------------------------------------------

    def _load(self, name: str) -> dict:
        with open(self._path(name)) as handle:
            return json.load(handle)

    def new_token(self, now: datetime.datetime, hours: int = 24) -> str:
        """A one-time enrolment token for one box (for its setup page or first-boot file)."""
        token = secrets.token_urlsafe(18)
        while token.startswith("-"):  # typed after `--token`, it would read as an option (1 token in 64)
            token = secrets.token_urlsafe(18)
        tokens = self._load("tokens.json")
        expires = (now + datetime.timedelta(hours=hours)).timestamp()
        tokens[enrolment.token_digest(token)] = {"expires": expires, "used_by": None}
        _atomic_json(self._path("tokens.json"), tokens)
        return token

    def enrol(self, request_pem: bytes, now: datetime.datetime) -> bytes:
        """Check a box's request and its token, spend the token, and issue the box's client certificate."""
        request = enrolment.read_request(request_pem)
        tokens = self._load("tokens.json")
        entry = tokens.get(enrolment.token_digest(request.token))
        if entry is None:
            raise CAError("the enrolment token is not one this CA issued")
        if entry["used_by"] is not None:
            raise CAError("the enrolment token was already used (by box %s)" % entry["used_by"])
        if now.timestamp() >= entry["expires"]:
            raise CAError("the enrolment token has expired")
        certificate = self._issue(request.box_id, x509.load_pem_x509_csr(request_pem).public_key(), now,
                                  BOX_CERT_DAYS, ExtendedKeyUsageOID.CLIENT_AUTH)  # fmt: skip
        entry["used_by"] = request.box_id
        _atomic_json(self._path("tokens.json"), tokens)
        boxes = self._load("boxes.json")
        boxes[request.box_id] = {
            "serial": str(certificate.serial_number),
            "claim_code": request.claim_code,
            "enrolled": now.isoformat(),
            "box_key": request.public_key.hex(),
        }
        _atomic_json(self._path("boxes.json"), boxes)
        return _pem(certificate)

    def _load_or_empty(self, name: str) -> dict:
        return self._load(name) if os.path.exists(self._path(name)) else {}

    def boxes(self) -> dict:
        return self._load("boxes.json")

    # -- certificates for the broker and the operators -----------------------------------------------------

    def _issue(self, common_name, public_key, now, days, usage, hosts=()) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(self.certificate.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if hosts:
            names = []
            for host in hosts:
                try:
                    names.append(x509.IPAddress(ipaddress.ip_address(host)))
                except ValueError:
                    names.append(x509.DNSName(host))
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        return builder.sign(self._key, None)

    def issue_key_pair(self, common_name: str, output: str, now, server_hosts=()) -> tuple:
        """A new key and certificate in `output` (NAME.key 0600, NAME.crt), for the broker, an operator (whose
        name starts with fleet-: the broker's ACL, written afterwards, lets it reach every box) or a verifier
        (verifier-NAME: it reads every box's reports and writes only each box's rewards topic)."""
        verifier = common_name.startswith(VERIFIER_PREFIX) and len(common_name) > len(VERIFIER_PREFIX)
        if not server_hosts and not common_name.startswith(OPERATOR_PREFIX) and not verifier:
            raise CAError("client names start with %r (operators, such as fleet-ops) or %r (verifiers, such as "
                          "verifier-1)" % (OPERATOR_PREFIX, VERIFIER_PREFIX))  # fmt: skip
        os.makedirs(output, mode=0o700, exist_ok=True)
        key = Ed25519PrivateKey.generate()
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server_hosts else ExtendedKeyUsageOID.CLIENT_AUTH
        certificate = self._issue(common_name, key.public_key(), now, BOX_CERT_DAYS, usage, server_hosts)
        if not server_hosts:
            register = "verifiers.json" if verifier else "operators.json"
            clients = self._load_or_empty(register)
            clients[common_name] = {"serial": str(certificate.serial_number), "issued": now.isoformat()}
            _atomic_json(self._path(register), clients)
        stem = os.path.join(output, "broker" if server_hosts else common_name)
        if os.path.exists(stem + ".key"):
            os.unlink(stem + ".key")
        write_secret_file(stem + ".key", enrolment.private_key_pem_of(key))
        with open(stem + ".crt", "wb") as handle:
            handle.write(_pem(certificate))
        return stem + ".crt", stem + ".key"

    def broker_config(self, output: str, port: int, hosts, now, user: str = "") -> str:
        """Server certificate, CA certificate, ACL and mosquitto.conf for a broker with mutual TLS."""
        output = os.path.abspath(output)
        certificate, key = self.issue_key_pair("broker", output, now, server_hosts=hosts)
        with open(os.path.join(output, "ca.crt"), "wb") as handle:
            handle.write(_pem(self.certificate))
        acl = os.path.join(output, "acl")
        with open(acl, "w") as handle:
            handle.write(acl_text(sorted(self._load_or_empty("operators.json")),
                                  sorted(self._load_or_empty("verifiers.json"))))  # fmt: skip
        config = os.path.join(output, "mosquitto.conf")
        with open(config, "w") as handle:
            handle.write(
                "# Mutual TLS: every client shows a certificate from the fleet CA; its common name is its user name.\n"
                "listener %d %s\ncafile %s\ncertfile %s\nkeyfile %s\nrequire_certificate true\n"
                "use_identity_as_username true\nacl_file %s\n"
                % (port, hosts[0], os.path.join(output, "ca.crt"), certificate, key, acl)
            )
            if user:  # started as root, Mosquitto drops to this user before it reads the ACL: it must read this folder
                handle.write("user %s\n" % user)
        return config


def acl_text(operators, verifiers=()) -> str:
    """Boxes reach only their own topics (%u is the certificate's common name, the box id), and only in the
    direction the protocol gives them; operator clients (fleet-NAME) reach every box; verifiers (verifier-NAME)
    read every box's status, telemetry, events and receipts and write only each box's rewards."""
    box = "%s/%%u/" % topics.PREFIX
    lines = ["# boxes: their own topics only"]
    for name in (topics.STATUS,):
        lines.append("pattern readwrite %s%s" % (box, name))
    for name in (topics.TELEMETRY, topics.EVENT, topics.RESULT, topics.CONFIG_REPORTED, topics.RECEIPT):
        lines.append("pattern write %s%s" % (box, name))
    for name in (topics.COMMAND, topics.CONFIG_DESIRED, topics.REWARDS):
        lines.append("pattern read %s%s" % (box, name))
    for operator in operators:
        lines += ["", "user %s" % operator, "topic readwrite %s/#" % topics.PREFIX]
    for verifier in verifiers:
        lines += ["", "user %s" % verifier]
        lines += ["topic read %s/+/%s" % (topics.PREFIX, name) for name in VERIFIER_READS]
        lines.append("topic write %s/+/%s" % (topics.PREFIX, topics.REWARDS))
    return "\n".join(lines) + "\n"


VERIFIER_READS = (topics.STATUS, topics.TELEMETRY, topics.EVENT, topics.RECEIPT)
