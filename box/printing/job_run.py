"""The box's steps for printing a sealed job, shared by `mipai-box print` and the daemon:
verify completely, then (printer connected) check it and record the print, then stream."""

import time

from secure_print import opener
from secure_print.license import PRINTER_FIELDS
from wire import canonical, envelope

USAGE_RECORD = "print.usage"


def verify(handle, box, trust, ledger, material, on_progress=None, now=None) -> opener.OpenedJob:
    """Every check that needs no printer; raises SealedJobError. `on_progress(bytes, total)` as G-code is checked."""
    job = opener.open_job(handle, box.sealing, box.box_id, trust, now or time.time(), {box.signing_public})
    job.license.check_material(material)
    job.license.check_prints_left(ledger.prints_done(job.license.license_id))
    total = job.header.gcode_length
    report = None if on_progress is None else (lambda done: on_progress(done, total))
    opener.verify_payload(job, handle, on_progress=report)
    return job


def record(job: opener.OpenedJob, box, ledger, firmware: dict, material) -> int:
    """Check the connected printer against the license, then take the next print number with a signed usage
    record in one transaction. Returns the print number; raises SealedJobError (LicenseError)."""
    terms = job.license
    terms.check_printer(firmware)
    printer = {field: firmware.get(field, "") for field in PRINTER_FIELDS}

    def usage_record(print_number: int, sequence: int) -> str:
        body = {
            "box_id": box.box_id,
            "designer": terms.designer,
            "job_id": job.job_id,
            "license_id": terms.license_id,
            "material": (material or "").upper(),
            "print_number": print_number,
            "printer": printer,
        }
        signed = envelope.sign(USAGE_RECORD, body, box.signing, box.box_id, int(time.time()), sequence)
        return canonical.encode(signed).decode()

    return ledger.record_print(terms.license_id, job.job_id, terms.max_prints, usage_record)
