"""``prosima ledger network`` and the network report: runs, determinism, fault specs, systems."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from prosima.cli import app
from prosima.ledger.consensus.overlay import Overlay
from prosima.ledger.consensus.protocol import PHASES
from prosima.ledger.sim.behaviour import Behaviour
from prosima.ledger.sim.byzantine import FaultSchedule
from prosima.ledger.sim.network import Network, NetworkConfig, format_report
from prosima.ledger.sim.workload import make_workload, stand_in_shard_ids

runner = CliRunner()


def network(*args):
    return runner.invoke(app, ["ledger", "network", *map(str, args)])


def test_cli_runs_a_network_with_faults_and_writes_json(tmp_path):
    out = tmp_path / "net.json"
    result = network(
        "--nodes", 7, "--images", 10, "--batch", 3, "--seed", 4,
        "--byzantine", "equivocate@hub,silent@any", "--json", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "inproc network: 7 nodes on 1 process(es), f = 2" in result.stdout
    report = json.loads(out.read_text())
    assert report["agreement"] and report["faulty_tolerated"] and report["commits"]["stalled"] is None
    assert {f["behaviour"] for f in report["faulty"]} == {"equivocate", "silent"}
    assert report["faults_seen"]["silent"] >= 1
    assert len(report["per_node"]) == 7 and report["voting"]["rule"] == "count"
    roles = [d["role"] for d in report["per_node"]]
    assert roles.count("full") == 3
    assert report["timing"]["latency_ms"]["median"] > 0 and report["timing"]["images_per_s"] > 0
    assert set(report["timing"]["phase_share"]) == set(PHASES)
    # the critical path is one node's share of each phase: less than all 7 nodes run one by one
    crit = report["timing"]["critical_path_ms"]
    assert 0 < crit["median"] < report["timing"]["latency_ms"]["median"]
    assert crit["per_image"] < report["timing"]["ms_per_image"]
    s = report["storage"]
    assert s["losses_survived"] == 2 and s["replication"] > 1
    assert sum(d["total_bytes"] for d in report["per_node"]) == s["stored_bytes"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--byzantine", "lying"], "unknown behaviour"),
        (["--byzantine", "silent@9"], "not a free node index"),
        (["--voting", "degree"], "--voting must be count or degree-capped"),
        (["--backend", "grpc"], "--backend must be"),
        (["--system", "ring"], "system must be one of"),
        (["--erasure", "8"], "erasure code must be 'k,m'"),
        (["--erasure", "8,2"], "needs 10 distinct nodes"),
    ],
)
def test_bad_input_exits_2(args, message):
    result = network("--nodes", 4, "--images", 2, *args)
    assert result.exit_code == 2 and message in result.output


def test_too_many_faulty_nodes_warns_and_may_stall():
    result = network("--nodes", 4, "--images", 3, "--byzantine", "2xsilent@hub")
    assert "exceed what the protocol tolerates" in result.output
    assert result.exit_code == 1 and "STALLED" in result.stdout


def test_fault_spec_grammar():
    order = Overlay.barabasi_albert(10, 2, 0).by_degree
    s = FaultSchedule.parse("2xequivocate@hub, silent@7:3, garbage", n=10, by_degree=order, seed=1)
    assert [f.node for f in s.faults[:2]] == list(order[:2])
    assert s.of(7).behaviour is Behaviour.SILENT and s.of(7).start == 3
    assert len(s.nodes) == 4 and s.faults[3].behaviour is Behaviour.GARBAGE
    assert FaultSchedule.parse("", n=4, by_degree=range(4)).nodes == frozenset()
    assert s == FaultSchedule.parse("2xequivocate@hub,silent@7:3,garbage", n=10, by_degree=order, seed=1)
    with pytest.raises(ValueError):
        FaultSchedule.parse("5xsilent", n=4, by_degree=range(4))
    with pytest.raises(ValueError):
        FaultSchedule.parse("silent@", n=4, by_degree=range(4))


def _run(**kw):
    cfg = NetworkConfig(**({"nodes": 6, "seed": 9, "batch": 2, "hubs": 1} | kw))
    wl = make_workload(6, nodes=cfg.nodes, seed=cfg.seed, shard_ids=stand_in_shard_ids(8))
    with Network(cfg) as net:
        return net.run(wl)


def test_same_seed_same_chain_other_seed_other_chain():
    a, b, c = _run(), _run(), _run(seed=10)
    assert a["tip"] == b["tip"] and a["tip"] != c["tip"]
    assert a["storage"] == b["storage"]
    assert "committed 6/6 images" in format_report(a)


def test_systems_differ_in_what_nodes_keep():
    full, rnd, gft = _run(system="full"), _run(system="random"), _run(system="gft")
    assert all(d["role"] == "full" for d in full["per_node"])
    assert full["storage"]["losses_survived"] == 5
    assert rnd["storage"]["per_node_by_category"]["directory"][0] > 0
    assert "directory" not in gft["storage"]["per_node_by_category"]
    assert gft["storage"]["replication"] < full["storage"]["replication"]
    assert full["per_node"][0]["verifications"] > gft["per_node"][0]["verifications"]
    ec = _run(erasure=(3, 2))
    assert ec["storage"]["replication_by_category"]["payload"] == pytest.approx(5 / 3, rel=0.01)


def test_degree_capped_voting_runs_and_reports_weights():
    r = _run(voting="degree-capped", byzantine="double-sign@hub")
    assert r["voting"]["rule"] == "degree-capped" and r["voting"]["cap"] >= 1
    assert r["agreement"] and r["faulty_tolerated"]
