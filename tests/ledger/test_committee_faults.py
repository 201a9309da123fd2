"""``Committee`` with faulty members: ``submit`` reports the entries a faulty origin dropped, with
why, writes what was decided, and the next submission starts clean; schedules beyond what
consensus tolerates are refused."""

from __future__ import annotations

import pytest

from prosima.ledger.consensus.committee import Committee
from prosima.ledger.errors import LedgerError
from prosima.ledger.log.directory import Entry, Ledger
from prosima.ledger.sim.behaviour import Behaviour, Fault
from prosima.ledger.sim.byzantine import FaultSchedule


def entries(n: int, tag: str) -> list[Entry]:
    return [Entry(f"{tag}-{i}".encode(), "image.anchored", f"{tag}{i}".encode()) for i in range(n)]


def faulty(node: int, behaviour: str) -> FaultSchedule:
    return FaultSchedule((Fault(node, Behaviour(behaviour)),))


@pytest.mark.parametrize(
    ("behaviour", "reason"),
    [
        ("silent", "origin node 1 sent no transaction batch (silent)"),
        ("garbage", "origin node 1 signed its transactions with signatures that do not verify"),
    ],
)
def test_a_faulty_origin_s_entries_are_reported_dropped_and_nothing_is_written(tmp_path, behaviour, reason):
    with Ledger.init(tmp_path / "l", nodes=4) as ledger:
        committee = Committee(ledger, seed=0, faults=faulty(1, behaviour))
        done = committee.submit(entries(3, "bad"), origin=1)
        assert done.blocks == () and done.block is None
        assert done.dropped == ((0, reason), (1, reason), (2, reason))
        assert ledger.store.height == -1
        # the same committee goes on: an honest origin commits everything, the chain verifies
        good = committee.submit(entries(2, "good"), origin=2)
        assert good.dropped == () and [len(b.txs) for b in good.blocks] == [2]
        assert {tx.signer for tx in good.block.txs} == {committee.ctx.node_ids[2]}
        assert ledger.store.height == 0 and ledger.verify().ok
        # commit() keeps its all-or-nothing contract
        with pytest.raises(LedgerError, match="decided 0 of the 1 transactions"):
            committee.commit(entries(1, "again"), origin=1)
        assert ledger.store.height == 0


@pytest.mark.parametrize("behaviour", ["equivocate", "double-sign", "crash-leader"])
def test_faulty_nodes_that_do_not_drop_transactions_still_let_everything_commit(tmp_path, behaviour):
    with Ledger.init(tmp_path / "l", nodes=4) as ledger:
        committee = Committee(ledger, seed=0, faults=faulty(committee_hub(ledger), behaviour))
        for r in range(3):
            done = committee.submit(entries(2, f"r{r}"), origin=2)
            assert done.dropped == () and sum(len(b.txs) for b in done.blocks) == 2
        assert ledger.store.height == 2 and ledger.verify().ok


def committee_hub(ledger: Ledger) -> int:
    """The first leader (the top hub), so its fault is exercised at once."""
    return Committee(ledger, seed=0).overlay.by_degree[0]


def test_a_schedule_beyond_what_consensus_tolerates_is_refused(tmp_path):
    with Ledger.init(tmp_path / "l", nodes=4) as ledger:
        two = FaultSchedule((Fault(1, Behaviour.SILENT), Fault(2, Behaviour.GARBAGE)))
        with pytest.raises(
            LedgerError, match=r"2 faulty nodes of 4 exceed what consensus tolerates \(at most 1\)"
        ):
            Committee(ledger, faults=two)
        with pytest.raises(LedgerError, match="faulty node 7 is not a node index between 0 and 3"):
            Committee(ledger, faults=faulty(7, "silent"))
        assert ledger.store.height == -1
