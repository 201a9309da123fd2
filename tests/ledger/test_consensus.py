"""Protocol 4 on the in-process backend: commits, every named fault, and safety and liveness under
random fault schedules (many seeds), with the faulty nodes among the hubs.

Safety is checked two ways: honest nodes never append different blocks, and among every block
signature any node ever made (honest votes, double signatures, the colluders' forgeries) no two
different headers at one height reach a quorum.
"""

from __future__ import annotations

from collections import defaultdict

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from prosima.ledger.consensus.overlay import Overlay
from prosima.ledger.consensus.protocol import value_of
from prosima.ledger.consensus.replica import FullReplica
from prosima.ledger.log.block import BlockHeader
from prosima.ledger.log.crypto import SIGN_BLOCK
from prosima.ledger.sim.behaviour import Behaviour, Fault
from prosima.ledger.sim.byzantine import FaultSchedule
from prosima.ledger.sim.network import Network, NetworkConfig
from prosima.ledger.sim.workload import make_workload, stand_in_shard_ids


class Oracle:
    """Every block signature made, by height and header."""

    def __init__(self) -> None:
        self.sigs: dict[int, dict[bytes, dict[int, bytes]]] = defaultdict(lambda: defaultdict(dict))

    def __call__(self, height: int, signer: int, header: bytes, sig: bytes) -> None:
        self.sigs[height][header][signer] = sig

    def certified(self, net: Network) -> dict[int, list[bytes]]:
        """Headers per height whose valid signatures form a quorum."""
        out = {}
        for height, by_header in self.sigs.items():
            ok = []
            for header, sigs in by_header.items():
                valid = [
                    i
                    for i, s in sigs.items()
                    if net.registry.verify(net.ctx.node_ids[i], SIGN_BLOCK, header, s)
                ]
                if net.power.is_quorum(valid):
                    ok.append(header)
            out[height] = ok
        return out


def run(n, *, seed, schedule=None, spec="", images=6, batch=2, voting="count", split=False, hubs=1, tmp=None):
    oracle = Oracle()
    cfg = NetworkConfig(
        nodes=n, seed=seed, batch=batch, hubs=hubs, voting=voting, split_prepares=split, byzantine=spec
    )
    wl = make_workload(images, nodes=n, seed=seed, shard_ids=stand_in_shard_ids(4))
    with Network(cfg, schedule=schedule, observer=oracle, store_dir=tmp) as net:
        report = net.run(wl)
        audits = [
            node.replica.store.verify()
            for i, node in net.nodes.items()
            if isinstance(node.replica, FullReplica) and i in net.honest
        ]
        yield_ = (net, report, oracle, wl, audits)
    return yield_


def assert_safe(net, report, oracle, *, by_value=False):
    honest = sorted(net.honest)
    chains = {i: (net.nodes[i].replica.height, net.nodes[i].replica.tip_hash) for i in honest}
    assert len(set(chains.values())) == 1, chains
    for height, headers in oracle.certified(net).items():
        if by_value:
            assert len({value_of(BlockHeader.decode(h)) for h in headers}) <= 1, height
        else:
            assert len(headers) <= 1, (height, len(headers))


def assert_live(net, report, wl):
    assert report["commits"]["stalled"] is None
    assert max(report["commits"]["views"], default=1) <= net.power.f + 1
    committed = {tx.key for b in net.blocks for tx in b.txs}
    assert {r.root for r in wl if r.origin in net.honest} <= committed


def test_commits_every_image_and_hub_stores_verify(tmp_path):
    net, report, oracle, _wl, audits = run(4, seed=1, images=8, batch=3, hubs=2, tmp=tmp_path)
    assert report["commits"]["images_committed"] == 8 and report["commits"]["blocks"] == 3
    assert report["commits"]["views"] == [1, 1, 1] and report["agreement"]
    assert len(audits) == 2 and all(a.ok and a.transactions == 8 for a in audits)
    assert_safe(net, report, oracle)
    roles = {d["node"]: d["role"] for d in report["per_node"]}
    assert sorted(i for i, r in roles.items() if r == "full") == report["full_nodes"]
    kept = {d["node"]: d["ledger_bytes_kept"] for d in report["per_node"]}
    measured = {d["node"]: d["ledger_bytes"] for d in report["per_node"]}
    assert kept == measured  # the replicas keep exactly what the storage account says


@pytest.mark.parametrize("behaviour", [b for b in Behaviour if b is not Behaviour.RANDOM])
def test_each_named_fault_at_the_hubs(behaviour):
    n = 7
    hubs = Overlay.barabasi_albert(n, 2, 11).hubs(2)
    schedule = FaultSchedule(tuple(Fault(i, behaviour) for i in hubs))
    net, report, oracle, wl, _ = run(n, seed=11, schedule=schedule, images=8, batch=2)
    assert_safe(net, report, oracle)
    assert_live(net, report, wl)
    seen = set(report["faults_seen"])
    expected = {
        Behaviour.SILENT: "silent",
        Behaviour.GARBAGE: "invalid transaction signature",
        Behaviour.DOUBLE_SIGN: "double signing (two headers signed at one height)",
        Behaviour.EQUIVOCATE: "conflicting proposals",
        Behaviour.CRASH_LEADER: "view change",
    }[behaviour]
    assert expected in seen, seen


def test_crashed_leader_is_replaced_after_a_timeout():
    n = 4
    first = Overlay.barabasi_albert(n, 2, 5).by_degree[0]  # leads height 0, view 0
    schedule = FaultSchedule((Fault(first, Behaviour.SILENT, start=0),))
    net, report, _oracle, wl, _ = run(n, seed=5, schedule=schedule, images=4, batch=1)
    assert report["commits"]["views"][0] == 2
    assert "leader timeout (no proposal)" in report["faults_seen"]
    assert_live(net, report, wl)


@pytest.mark.parametrize("seed", range(12))
def test_degree_capped_voting_with_hubs_faulty(seed):
    n = 10
    hubs = Overlay.barabasi_albert(n, 2, seed).hubs(3)
    schedule = FaultSchedule(
        tuple(
            Fault(i, b)
            for i, b in zip(
                hubs, [Behaviour.EQUIVOCATE, Behaviour.DOUBLE_SIGN, Behaviour.GARBAGE], strict=True
            )
        )
    )
    net, report, oracle, wl, _ = run(
        n, seed=seed, schedule=schedule, voting="degree-capped", images=4, batch=2
    )
    assert report["faulty_tolerated"]
    assert_safe(net, report, oracle)
    assert_live(net, report, wl)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(4, 8),
    seed=st.integers(0, 2**20),
    at_hubs=st.booleans(),
    batch=st.integers(1, 3),
    data=st.data(),
)
def test_safety_and_liveness_under_random_fault_schedules(n, seed, at_hubs, batch, data):
    f = (n - 1) // 3
    count = data.draw(st.integers(0, f), label="faulty")
    behaviours = data.draw(st.lists(st.sampled_from(list(Behaviour)), min_size=count, max_size=count))
    starts = data.draw(st.lists(st.integers(0, 2), min_size=count, max_size=count))
    overlay = Overlay.barabasi_albert(n, 2, seed)
    nodes = overlay.hubs(count) if at_hubs else data.draw(st.permutations(range(n)))[:count]
    schedule = FaultSchedule(tuple(Fault(i, b, s) for i, b, s in zip(nodes, behaviours, starts, strict=True)))
    net, report, oracle, wl, _ = run(n, seed=seed, schedule=schedule, images=5, batch=batch, hubs=0)
    assert report["faulty_tolerated"]
    assert_safe(net, report, oracle)
    assert_live(net, report, wl)


@pytest.mark.parametrize("seed", range(60))
def test_many_seeds_hubs_all_faulty_and_colluding(seed):
    n = 7 + seed % 3
    f = (n - 1) // 3
    schedule = FaultSchedule.random(
        n, f, seed=seed, by_degree=Overlay.barabasi_albert(n, 2, seed).by_degree, hubs=True
    )
    net, report, oracle, wl, _ = run(n, seed=seed, schedule=schedule, images=4, batch=2, hubs=0)
    assert_safe(net, report, oracle)
    assert_live(net, report, wl)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(4, 7), seed=st.integers(0, 2**20))
def test_safety_holds_even_when_faulty_prepares_differ_per_receiver(n, seed):
    """With all-gathers that faulty nodes can split, liveness is not promised, safety still is."""
    f = (n - 1) // 3
    overlay = Overlay.barabasi_albert(n, 2, seed)
    schedule = FaultSchedule(tuple(Fault(i, Behaviour.EQUIVOCATE) for i in overlay.hubs(f)))
    net, report, oracle, _wl, _ = run(n, seed=seed, schedule=schedule, images=4, batch=2, split=True, hubs=0)
    assert_safe(net, report, oracle, by_value=True)


def test_beyond_the_bound_the_oracle_sees_the_fork():
    """Sanity check of the checker: with more than f colluders their forged block is certified."""
    n = 4
    overlay = Overlay.barabasi_albert(n, 2, 3)
    schedule = FaultSchedule(tuple(Fault(i, Behaviour.EQUIVOCATE) for i in overlay.by_degree[:3]))
    net, report, oracle, _wl, _ = run(n, seed=3, schedule=schedule, images=3, batch=1, hubs=0)
    assert not report["faulty_tolerated"]
    assert any(len(h) > 1 for h in oracle.certified(net).values())


def test_twenty_nodes_with_the_six_top_hubs_faulty():
    """The paper's N = 20, with f = 6 faulty nodes taken from the top of the degree order."""
    n = 20
    hubs = Overlay.barabasi_albert(n, 2, 2).hubs(6)
    behaviours = [Behaviour.EQUIVOCATE, Behaviour.DOUBLE_SIGN, Behaviour.GARBAGE, Behaviour.SILENT,
                  Behaviour.CRASH_LEADER, Behaviour.EQUIVOCATE]  # fmt: skip
    schedule = FaultSchedule(tuple(Fault(i, b) for i, b in zip(hubs, behaviours, strict=True)))
    net, report, oracle, wl, _ = run(n, seed=2, schedule=schedule, images=6, batch=2, hubs=3)
    assert report["faulty_tolerated"]
    assert_safe(net, report, oracle)
    assert_live(net, report, wl)
