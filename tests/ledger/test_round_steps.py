"""A consensus node's round is one ``RoundState`` moving through ``Step``: handlers out of step are
refused, faults are ``FaultEvent`` members, and faulty nodes lie only through the transport
wrapper, which sees a read-only view of the node."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from prosima.ledger.consensus.events import FaultEvent
from prosima.ledger.consensus.protocol import ConsensusNode, run_round
from prosima.ledger.consensus.round_state import OutOfStep, RoundState, Step
from prosima.ledger.errors import LedgerError
from prosima.ledger.sim.behaviour import Behaviour, Fault
from prosima.ledger.sim.byzantine import FaultSchedule
from prosima.ledger.sim.faulty_transport import FaultyTransport
from prosima.ledger.sim.network import Network, NetworkConfig
from prosima.ledger.sim.workload import make_workload, stand_in_shard_ids

SIM = Path(__file__).resolve().parents[2] / "src" / "prosima" / "ledger" / "sim"


def small(**kw) -> Network:
    return Network(NetworkConfig(**({"nodes": 4, "seed": 3, "hubs": 0} | kw)))


def requests(net: Network, images: int = 2) -> dict:
    wl = make_workload(images, nodes=net.config.nodes, seed=net.config.seed, shard_ids=stand_in_shard_ids(2))
    out: dict = {}
    for r in wl:
        out.setdefault(r.origin, []).append(r.request())
    return out


def test_a_node_keeps_its_round_in_one_state_object_and_takes_no_fault_hook():
    assert list(inspect.signature(ConsensusNode).parameters) == ["index", "key", "ctx", "replica"]
    with small() as net:
        node = net.nodes[0]
        assert set(vars(node)) == {
            "index", "key", "ctx", "replica", "pool", "committed", "events", "verifications", "round",
        }  # fmt: skip
        assert isinstance(node.round, RoundState) and node.round.step is Step.IDLE
        assert node.height == node.round.height == 0


def test_handlers_out_of_step_are_refused():
    with small() as net:
        node = net.nodes[1]
        with pytest.raises(
            OutOfStep, match="on_txs belongs to step sign; the round at height 0 is at step idle"
        ):
            node.on_txs([None] * 4)
        with pytest.raises(OutOfStep, match="on_prepares belongs to step prepare"):
            node.on_prepares(0, [None] * 4)
        with pytest.raises(LedgerError, match="no block was decided this round"):
            node.append_decided()
        sent = net.transport.allgather({i: n.sign_requests([]) for i, n in net.nodes.items()})
        node.on_txs(sent[1])
        assert node.round.step is Step.PROPOSE
        with pytest.raises(OutOfStep, match="on_txs belongs to step sign"):
            node.on_txs(sent[1])
        with pytest.raises(OutOfStep, match="on_proposal belongs to step propose, view 1"):
            node.on_proposal(1, None)
        node.on_proposal(0, None)
        assert node.round.step is Step.PREPARE
        assert FaultEvent.LEADER_TIMEOUT in {e.kind for e in node.events}


def test_a_round_ends_idle_at_the_next_height():
    with small() as net:
        result = run_round(net.nodes, net.wire, requests(net))
        assert result.block is not None and result.views == 1
        assert {(n.round.step, n.height) for n in net.nodes.values()} == {(Step.IDLE, 1)}


def test_fault_events_are_enum_members_and_read_as_before():
    with small(byzantine="silent@2,") as net:
        report = net.run(make_workload(4, nodes=4, seed=3, shard_ids=stand_in_shard_ids(2)))
        kinds = {e.kind for n in net.nodes.values() for e in n.events}
    assert kinds and all(isinstance(k, FaultEvent) for k in kinds)
    assert report["faults_seen"]["silent"] >= 1  # the report keys are the events' text


def test_faults_wrap_the_transport_and_see_a_read_only_node():
    with small(byzantine="garbage@1") as net:
        assert isinstance(net.wire, FaultyTransport) and net.wire.inner is net.transport
        assert set(net.wire.adversaries) == {1}
        view = net.nodes[1].read_only()
        net.nodes[1].sign_requests(requests(net).get(1, []))
        with pytest.raises(TypeError):
            view.pool[b"x"] = None  # type: ignore[index]
        with pytest.raises(TypeError):
            view.checked[b"x"] = True  # type: ignore[index]
        assert isinstance(view.my_txs, tuple) and view.step is Step.SIGN and view.height == 0
    with small() as honest:
        assert honest.wire is honest.transport  # nothing to inject: the plain transport
    schedule = FaultSchedule((Fault(9, Behaviour.SILENT),))
    with small() as net:
        assert schedule.wrap(net.transport, lambda i: net.nodes[i].read_only(), {}, 0) is net.transport


def _private_reads(path: Path) -> list[str]:
    """``x._name`` reads where ``x`` is not ``self`` (another object's private state)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            owner = node.value
            if not (isinstance(owner, ast.Name) and owner.id in ("self", "cls")):
                out.append(f"{path.name}:{node.lineno} {ast.unparse(node)}")
    return out


def test_the_simulator_reads_no_private_state_of_the_nodes():
    files = sorted(SIM.glob("*.py"))
    assert files
    assert [r for f in files for r in _private_reads(f)] == []
