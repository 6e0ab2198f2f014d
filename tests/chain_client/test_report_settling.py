"""The rewards topic is retained, and the processes of a verifier group publish a box's reports as they decide: two
reports can reach the broker in the wrong order. Once a box's reports are quiet, exactly one process is asked to
publish the newest again (docs/verifier.md, "Scaling out")."""

import time

from chain_client.ledger import Ledger
from tests.chain_client.boxsim import SimBox

QUIET = 2.0


def test_a_box_whose_reports_went_quiet_is_settled_once_by_one_process(tmp_path):
    path = str(tmp_path / "ledger.sqlite")
    one, two = Ledger(path), Ledger(path)  # two processes of one group, one file
    box = SimBox()
    one.add_box(box.entry(), 0)
    _body, older = one.report(box.box_id)
    _body, newer = two.report(box.box_id)  # published first, say: the older one would stay retained
    assert newer > older
    now = time.time()
    assert one.unsettled_reports(now, QUIET) == []  # not quiet yet
    later = now + QUIET + 0.1
    assert one.unsettled_reports(later, QUIET) + two.unsettled_reports(later, QUIET) == [box.box_id]
    _body, settled = two.report(box.box_id, settling=True)
    assert settled > newer
    assert one.unsettled_reports(later + 60, QUIET) == []  # the settling report needs no settling itself
    _body, fresh = one.report(box.box_id)  # a new decision: settled again once quiet
    assert two.unsettled_reports(time.time() + QUIET + 0.1, QUIET) == [box.box_id]
    assert fresh > settled
    one.close()
    two.close()
