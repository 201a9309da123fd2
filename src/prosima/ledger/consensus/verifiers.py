"""Who verifies each transaction (and, on a partial replica, keeps it), per system:

- ``gft``: ``f + 1`` nodes by GFT placement of the transaction id, the signer first;
- ``random``: the signer and ``f`` nodes drawn by a seeded random placement;
- ``full``: every node.

With at most ``f`` faulty nodes, one verifier of each transaction is honest.
"""

from __future__ import annotations

from collections.abc import Callable

from prosima.ledger.consensus.placement import GftPlacement, Placement, RandomPlacement
from prosima.ledger.consensus.voting import max_faulty

SYSTEMS = ("gft", "random", "full")
VERIFY_SPACE = "prosima.verify.v1"  # the GFT placement's name space for transaction ids


def verifier_sets(system: str, n: int, seed: int) -> Callable[[bytes, int], tuple[int, ...]]:
    """Who verifies (and, if partial, keeps) a transaction: ``f + 1`` mapped nodes, signer first."""
    if system not in SYSTEMS:
        raise ValueError(f"system must be one of {', '.join(SYSTEMS)}, got {system!r}")
    size = min(n, max_faulty(n) + 1)
    if system == "full":
        return lambda _tx, origin: tuple(range(n))
    placement: Placement = GftPlacement(n, VERIFY_SPACE) if system == "gft" else RandomPlacement(n, seed)
    if system == "gft":
        return lambda tx, origin: placement.nodes(tx.hex(), r=size, local=origin)
    return lambda tx, origin: tuple(dict.fromkeys((origin, *placement.nodes(tx.hex(), r=size))))[:size]
