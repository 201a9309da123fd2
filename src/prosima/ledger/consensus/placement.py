"""Where stored items go: GFT placement (rendezvous hashing on ids, no directory), and the two
baselines of the benchmark (random placement with a directory, and full replication).

An item id is any string; for image data it is ``item_id(image_key, shard_id)`` where the shard id
comes from the imaging side (it depends on geometry only). GFT placement is a pure function of the
id, the node count and the local node, so every node computes the same answer with no coordination.
"""

from __future__ import annotations

import hashlib
import random
from typing import Protocol

PLACEMENTS: tuple[str, ...] = ("gft", "random", "full")


def item_id(image_key: bytes, shard_id: str) -> str:
    """The placement id of one shard of one image (``key/shard``); ``image_key`` may be empty, in
    which case every image's shard at one grid position goes to the same nodes."""
    return f"{image_key.hex()}/{shard_id}" if image_key else shard_id


class Placement(Protocol):
    """Maps an item to the nodes that store it."""

    name: str
    n: int

    def nodes(self, item: str, *, r: int, local: int | None = None) -> tuple[int, ...]:
        """``r`` distinct nodes for ``item``; ``local`` first when given."""
        ...

    def directory_bytes(self) -> int:
        """Bytes of the lookup directory this placement needs on each node (0: none)."""
        ...


def _check(n: int, r: int, local: int | None) -> None:
    if not 1 <= r <= n:
        raise ValueError(f"replication must be between 1 and {n}, got {r}")
    if local is not None and not 0 <= local < n:
        raise ValueError(f"local node {local} is not in 0..{n - 1}")


class GftPlacement:
    """Rendezvous (highest-random-weight) hashing: node ``i`` scores ``H(salt | item)[i]``; an item
    goes to its local node, then to the highest scores. Adding or removing one node moves only the
    items that node held."""

    name = "gft"

    def __init__(self, n: int, salt: str = "prosima.placement.v1") -> None:
        if n < 1:
            raise ValueError("placement needs at least one node")
        self.n = n
        self._salt = salt.encode()

    def ranking(self, item: str) -> list[int]:
        """Every node, best first, for ``item``. Node ``i``'s score is bytes ``8i .. 8i+8`` of
        SHAKE-128 over the item, so a node's score does not depend on how many nodes there are."""
        raw = hashlib.shake_128(self._salt + b"\x00" + item.encode()).digest(8 * self.n)
        return sorted(range(self.n), key=lambda i: (raw[8 * i : 8 * i + 8], i), reverse=True)

    def nodes(self, item: str, *, r: int, local: int | None = None) -> tuple[int, ...]:
        """``local`` (when given) and then the best-ranked other nodes, ``r`` in all."""
        _check(self.n, r, local)
        order = self.ranking(item)
        if local is not None:
            order.remove(local)
            order.insert(0, local)
        return tuple(order[:r])

    def directory_bytes(self) -> int:
        """GFT needs no directory."""
        return 0


class RandomPlacement:
    """Each item on ``r`` nodes drawn from a seeded stream, in arrival order; the answer depends on
    history, so lookups need the directory this object keeps (item -> nodes)."""

    name = "random"

    def __init__(self, n: int, seed: int = 0) -> None:
        if n < 1:
            raise ValueError("placement needs at least one node")
        self.n = n
        self._rng = random.Random(seed)
        self.directory: dict[str, tuple[int, ...]] = {}

    def nodes(self, item: str, *, r: int, local: int | None = None) -> tuple[int, ...]:
        """The recorded nodes of ``item``, or ``r`` fresh random ones (``local`` is ignored)."""
        _check(self.n, r, local)
        found = self.directory.get(item)
        if found is None or len(found) < r:
            found = self.directory[item] = tuple(self._rng.sample(range(self.n), r))
        return found[:r]

    def directory_bytes(self) -> int:
        """A directory entry per item: the item id and two bytes per node."""
        return sum(len(k.encode()) + 2 * len(v) for k, v in self.directory.items())


class FullPlacement:
    """Every item on every node (full replication)."""

    name = "full"

    def __init__(self, n: int) -> None:
        self.n = n

    def nodes(self, item: str, *, r: int, local: int | None = None) -> tuple[int, ...]:
        """All nodes, ``local`` first (``r`` is ignored)."""
        order = list(range(self.n))
        if local is not None:
            order.remove(local)
            order.insert(0, local)
        return tuple(order)

    def directory_bytes(self) -> int:
        """No directory: everything is everywhere."""
        return 0


def make_placement(name: str, n: int, seed: int = 0) -> Placement:
    """``gft``, ``random`` (seeded) or ``full``."""
    if name == "gft":
        return GftPlacement(n)
    if name == "random":
        return RandomPlacement(n, seed)
    if name == "full":
        return FullPlacement(n)
    raise ValueError(f"placement must be one of {', '.join(PLACEMENTS)}, got {name!r}")
