"""``Committee``: a ledger directory's own nodes commit entries by consensus into its store."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

import prosima.ledger.consensus.committee as committee_mod
from prosima.ledger.consensus.committee import Committee
from prosima.ledger.consensus.protocol import PHASES, Stalled
from prosima.ledger.errors import LedgerError
from prosima.ledger.log.directory import Entry, Ledger
from prosima.ledger.log.proof import check_document
from prosima.ledger.log.transaction import MAX_PAYLOAD
from prosima.optional import available


def entries(n: int, tag: str = "e") -> list[Entry]:
    return [Entry(f"{tag}-{i}".encode(), "image.anchored", f"{tag}{i}".encode()) for i in range(n)]


def check_ledger(ledger: Ledger, block) -> None:
    """The store verifies from scratch, and every transaction of ``block`` has a checking proof."""
    assert ledger.verify().ok
    for tx in block.txs:
        doc = ledger.inclusion_proof(tx.tx_id)
        assert check_document(doc, registry=ledger.registry).ok
        assert check_document(json.dumps(doc), registry=ledger.registry).ok


@pytest.mark.parametrize("nodes", [4, 20])
@pytest.mark.parametrize("count", [1, 5])
def test_commit_lands_in_the_store_and_verifies(tmp_path, nodes, count):
    path = tmp_path / "l"
    with Ledger.init(path, nodes=nodes) as ledger:
        committee = Committee(ledger, seed=3)
        assert committee.n == nodes and len(committee.nodes) == nodes
        block = committee.commit(entries(count))
        assert block is not None and block.header.height == 0 and len(block.txs) == count
        assert [tx.payload for tx in block.txs] == [e.payload for e in entries(count)]
        assert all(tx.signer == ledger.local.node_id for tx in block.txs)
        assert len(block.qc.signers) >= ledger.registry.threshold
        assert ledger.store.height == 0 and ledger.store.tip_hash == block.hash
        assert ledger.store.block(0) == block
        assert committee.height == 0
        check_ledger(ledger, block)
        assert committee.last_seconds > 0 and committee.last_write_seconds > 0
        assert len(committee.last_rounds) == 1 and set(committee.last_phases) == set(PHASES)
        assert sum(committee.last_critical.values()) <= sum(committee.last_phases.values())
    with Ledger.open(path, verify="full") as reopened:
        assert reopened.store.height == 0 and reopened.store.checkpoint().height == 0
        check_ledger(reopened, block)
        assert reopened.store.txs_by_key(b"e0") == [(block.txs[0].tx_id, 0, 0)]


def test_successive_commits_extend_the_chain(tmp_path):
    with Ledger.init(tmp_path / "l", nodes=4) as ledger:
        committee = Committee(ledger)
        first = committee.commit(entries(2, "a"))
        second = committee.commit(entries(3, "b"))
        assert (first.header.height, second.header.height) == (0, 1)
        assert second.header.prev_hash == first.hash and second.header.log_size == 5
        assert ledger.store.height == 1 and ledger.store.log.size == 5
        check_ledger(ledger, second)
        assert ledger.consistency_proof(0)["type"]


def test_commits_interleave_with_direct_appends(tmp_path):
    path = tmp_path / "l"
    with Ledger.init(path, nodes=4) as ledger:
        ledger.append(entries(1, "direct0"))
        committee = Committee(ledger)  # starts at height 0
        assert committee.height == 0
        assert committee.commit(entries(2, "c1")).header.height == 1
        ledger.append(entries(2, "direct2"))  # the store moved past the committee
        ledger.append(entries(1, "direct3"))
        block = committee.commit(entries(1, "c4"))
        assert block.header.height == 4 and block.header.prev_hash == ledger.store.header(3).hash
        assert committee.height == 4
        ledger.append(entries(1, "direct5"))
        assert ledger.store.height == 5
        check_ledger(ledger, block)
    with Ledger.open(path, verify="full") as reopened:
        assert reopened.verify().ok and reopened.store.height == 5
        payloads = [reopened.store.block(h).txs[0].payload for h in range(6)]
        assert payloads == [b"direct0-0", b"c1-0", b"direct2-0", b"direct3-0", b"c4-0", b"direct5-0"]


def test_two_committees_on_one_ledger_do_not_fork(tmp_path):
    with Ledger.init(tmp_path / "l", nodes=4) as ledger:
        one, two = Committee(ledger), Committee(ledger, seed=9)
        one.commit(entries(1, "x"))
        assert two.commit(entries(1, "y")).header.height == 1
        assert one.commit(entries(1, "z")).header.height == 2
        assert ledger.verify().ok


def test_a_missing_local_key_is_a_clear_error(tmp_path):
    path = tmp_path / "l"
    Ledger.init(path, nodes=4).close()
    (path / "keys" / "node-02.key").unlink()
    with Ledger.open(path) as ledger:
        with pytest.raises(LedgerError, match=r"node 2 \([0-9a-f]+\) is hosted here but its key is not in"):
            Committee(ledger)
        assert ledger.store.height == -1


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (Entry(bytes(MAX_PAYLOAD + 1)), "entry 1 is invalid: payload of"),
        (Entry(b"x", kind="Not A Kind"), "entry 1 is invalid: transaction kind"),
        (Entry(b"x", key=bytes(65)), "entry 1 is invalid: payload key"),
    ],
)
def test_an_invalid_entry_raises_before_anything_is_written(tmp_path, bad, message):
    with Ledger.init(tmp_path / "l", nodes=4) as ledger:
        committee = Committee(ledger)
        committee.commit(entries(1))
        with pytest.raises(LedgerError, match=message):
            committee.commit([Entry(b"fine"), bad])
        assert ledger.store.height == 0 and ledger.store.log.size == 1
        assert committee.height == 0
        assert committee.commit(entries(1, "after")).header.height == 1
        assert ledger.verify().ok


def test_no_entries_commit_nothing(tmp_path):
    with Ledger.init(tmp_path / "l", nodes=4) as ledger:
        assert Committee(ledger).commit([]) is None
        assert ledger.store.height == -1


def test_a_failed_round_writes_nothing_and_the_next_commit_recovers(tmp_path, monkeypatch):
    with Ledger.init(tmp_path / "l", nodes=4) as ledger:
        committee = Committee(ledger)
        committee.commit(entries(1))
        real = committee_mod.run_round

        def decide_then_fail(*args, **kwargs):
            real(*args, **kwargs)  # the nodes append a block the store never sees
            raise Stalled("injected")

        monkeypatch.setattr(committee_mod, "run_round", decide_then_fail)
        with pytest.raises(Stalled, match="injected"):
            committee.commit(entries(2, "lost"))
        assert ledger.store.height == 0 and committee.height == 1
        monkeypatch.setattr(committee_mod, "run_round", real)
        block = committee.commit(entries(1, "kept"))
        assert block.header.height == 1 and [t.payload for t in block.txs] == [b"kept-0"]
        assert ledger.verify().ok


def test_blocks_capped_in_size_take_several_rounds(tmp_path):
    with Ledger.init(tmp_path / "l", nodes=4) as ledger:
        committee = Committee(ledger)
        committee.ctx.max_block_txs = 2
        block = committee.commit(entries(5))
        assert [len(b.txs) for b in committee.last_blocks] == [2, 2, 1]
        assert block == committee.last_blocks[-1] and ledger.store.height == 2
        assert ledger.verify().ok


def test_origin_other_than_the_local_node(tmp_path):
    with Ledger.init(tmp_path / "l", nodes=4) as ledger:
        committee = Committee(ledger)
        block = committee.commit(entries(2), origin=3)
        assert {tx.signer for tx in block.txs} == {ledger.keys[3].node_id}
        check_ledger(ledger, block)
        with pytest.raises(LedgerError, match="origin must be a node index"):
            committee.commit(entries(1), origin=4)


# -- MPI -----------------------------------------------------------------------------------

MPIRUN = shutil.which("mpirun")

_RANK_SCRIPT = """
import json, sys
from prosima.ledger.consensus.committee import Committee
from prosima.ledger.log.directory import Entry, Ledger
from prosima.ledger.consensus.mpi import MpiTransport

transport = MpiTransport(nodes=4)
with Ledger.open(sys.argv[1]) as ledger:
    committee = Committee(ledger, transport=transport)
    mine = 0 in transport.local
    hashes = [committee.commit([Entry(b"m0"), Entry(b"m1")] if mine else []).hash.hex()]
    if mine:
        ledger.append([Entry(b"direct")])  # the other rank re-syncs from the store file
    hashes.append(committee.commit([Entry(b"m2")] if mine else []).hash.hex())
    transport.barrier()
print(json.dumps({"rank": transport.rank, "hashes": hashes}))
"""


@pytest.mark.skipif(
    MPIRUN is None or not available("mpi4py"),
    reason="needs Open MPI (Debian openmpi-bin, libopenmpi-dev) and mpi4py (pip install 'prosima[mpi]')",
)
def test_mpirun_2_ranks_commit_into_one_store(tmp_path):
    path = tmp_path / "l"
    Ledger.init(path, nodes=4).close()
    script = tmp_path / "rank.py"
    script.write_text(_RANK_SCRIPT)
    cmd = [MPIRUN, "--oversubscribe", "--bind-to", "none", "-n", "2", sys.executable, str(script), str(path)]
    if os.geteuid() == 0:
        cmd.insert(1, "--allow-run-as-root")
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=120, cwd=tmp_path, stdin=subprocess.DEVNULL
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    outs = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert sorted(o["rank"] for o in outs) == [0, 1]
    assert outs[0]["hashes"] == outs[1]["hashes"]
    with Ledger.open(path, verify="full") as ledger:
        assert ledger.store.height == 2 and ledger.verify().ok
        assert [ledger.store.block(h).hash.hex() for h in (0, 2)] == outs[0]["hashes"]
        assert [len(ledger.store.block(h).txs) for h in range(3)] == [2, 1, 1]
