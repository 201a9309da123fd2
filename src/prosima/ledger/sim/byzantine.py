"""A seeded schedule of who misbehaves (``behaviour``), how and from which height, read from a
``--byzantine`` spec. A schedule is the ``FaultInjection`` a committee or a simulated network
takes: ``wrap`` puts an adversary per faulty node between the hosted nodes and their transport.
The faulty nodes collude: each knows the keys of all of them (a network derives every key from its
seed; a committee has the keys of the nodes it hosts)."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from prosima.ledger.consensus.byzantine_spec import parse_spec
from prosima.ledger.consensus.read_only_node import ReadOnlyNode
from prosima.ledger.consensus.transport import Transport
from prosima.ledger.log.crypto import NodeKey
from prosima.ledger.sim.adversary import Adversary
from prosima.ledger.sim.behaviour import Behaviour, Fault
from prosima.ledger.sim.faulty_transport import FaultyTransport

EXAMPLE = "'2xsilent@hub:3'"


@dataclass(frozen=True)
class FaultSchedule:
    """Who is faulty, how, and from which height."""

    faults: tuple[Fault, ...] = ()

    def __post_init__(self) -> None:
        nodes = [f.node for f in self.faults]
        if len(set(nodes)) != len(nodes):
            raise ValueError("a node can have only one faulty behaviour")

    @property
    def nodes(self) -> frozenset[int]:
        """The faulty nodes."""
        return frozenset(f.node for f in self.faults)

    def of(self, node: int) -> Fault | None:
        """The fault of ``node``, if any."""
        return next((f for f in self.faults if f.node == node), None)

    @classmethod
    def parse(cls, spec: str, *, n: int, by_degree: Sequence[int], seed: int = 0) -> FaultSchedule:
        """Read a ``--byzantine`` spec (``byzantine_spec``; e.g. ``3xequivocate@hub,silent@any``):
        ``hub`` takes the highest-degree node not yet faulty, ``any`` (the default) a seeded random
        node not yet faulty, and ``FROM`` is the first faulty height."""
        rng = random.Random(f"faults/{seed}")
        taken: list[int] = []
        faults = []
        for entry in parse_spec(spec, example=EXAMPLE):
            behaviour = entry.behaviour(Behaviour)
            for _ in range(entry.count):
                free = [i for i in range(n) if i not in taken]
                if not free:
                    raise ValueError(f"more faulty nodes than the {n} nodes")
                if entry.target == "hub":
                    node = next(i for i in by_degree if i not in taken)
                elif entry.target == "any":
                    node = rng.choice(free)
                else:
                    node = entry.target
                    if not 0 <= node < n or node in taken:
                        raise ValueError(f"node {node} is not a free node index in 0..{n - 1}")
                taken.append(node)
                faults.append(Fault(node, behaviour, entry.start))
        return cls(tuple(faults))

    @classmethod
    def random(
        cls,
        n: int,
        count: int,
        *,
        seed: int,
        by_degree: Sequence[int] = (),
        hubs: bool = False,
        behaviours: Sequence[Behaviour] = tuple(Behaviour),
        max_start: int = 0,
    ) -> FaultSchedule:
        """``count`` faulty nodes (the top hubs when ``hubs``) with behaviours drawn from the seed."""
        rng = random.Random(f"random-faults/{seed}")
        nodes = list(by_degree[:count]) if hubs else rng.sample(range(n), count)
        return cls(tuple(Fault(i, rng.choice(list(behaviours)), rng.randint(0, max_start)) for i in nodes))

    def wrap(
        self,
        transport: Transport,
        hosted: Callable[[int], ReadOnlyNode],
        keys: Mapping[int, NodeKey],
        seed: int,
        *,
        split_prepares: bool = False,
    ) -> Transport:
        """``transport`` with an ``Adversary`` rewriting what each faulty node it hosts sends (the
        ``FaultInjection`` of a committee or network); the faulty nodes among ``keys`` collude.
        ``split_prepares`` lets double-signers send different prepares to different nodes (a
        transport that allows split all-gathers only). No faulty node hosted: ``transport`` itself."""
        coalition = {i: k for i, k in keys.items() if i in self.nodes}
        adversaries = {
            f.node: Adversary(f, coalition, seed, split_prepares=split_prepares)
            for f in self.faults
            if f.node in transport.local
        }
        return FaultyTransport(transport, adversaries, hosted) if adversaries else transport

    def to_json(self) -> list[dict[str, object]]:
        """A JSON-ready view."""
        return [f.to_json() for f in self.faults]
