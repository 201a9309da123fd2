"""GFT placement: a pure function of ids (same on every node, in every process, in every run),
local first, r distinct nodes, balanced; the random baseline needs its directory."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys

import pytest

from prosima.imaging.shards import plan_shards
from prosima.ledger.consensus.placement import (
    FullPlacement,
    GftPlacement,
    RandomPlacement,
    item_id,
    make_placement,
)

SHARDS = [s.shard_id for s in plan_shards((256, 256), 16).shards]
KEYS = [random.Random(i).randbytes(32) for i in range(50)]


def _table(n: int = 20, r: int = 3) -> dict[str, list[int]]:
    p = GftPlacement(n)
    return {
        item_id(k, s): list(p.nodes(item_id(k, s), r=r, local=j % n))
        for j, k in enumerate(KEYS)
        for s in SHARDS
    }


def test_placement_is_the_same_on_every_node_and_in_every_process():
    here = _table()
    assert here == _table()  # a second "node" in this process
    code = (
        "import json, random;"
        "from prosima.ledger.consensus.placement import GftPlacement, item_id;"
        "from prosima.imaging.shards import plan_shards;"
        "S=[s.shard_id for s in plan_shards((256,256),16).shards];"
        "K=[random.Random(i).randbytes(32) for i in range(50)];"
        "p=GftPlacement(20);"
        "print(json.dumps({item_id(k,s): list(p.nodes(item_id(k,s), r=3, local=j%20))"
        " for j,k in enumerate(K) for s in S}))"
    )
    for hash_seed in ("1", "2"):
        env = os.environ | {"PYTHONHASHSEED": hash_seed}
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
        )
        assert json.loads(out.stdout) == here


@pytest.mark.parametrize("r", [1, 2, 3, 7, 20])
def test_local_first_and_distinct(r):
    p = GftPlacement(20)
    for j, sid in enumerate(SHARDS):
        nodes = p.nodes(item_id(KEYS[0], sid), r=r, local=j)
        assert len(nodes) == len(set(nodes)) == r and nodes[0] == j
        assert p.nodes(item_id(KEYS[0], sid), r=r) == tuple(p.ranking(item_id(KEYS[0], sid))[:r])


def test_geometry_only_ids_put_a_grid_position_on_fixed_nodes_unless_keyed():
    p = GftPlacement(20)
    fixed = {p.nodes(item_id(b"", SHARDS[0]), r=3) for _ in KEYS}
    keyed = {p.nodes(item_id(k, SHARDS[0]), r=3) for k in KEYS}
    assert len(fixed) == 1 and len(keyed) > 20


def test_balance_over_many_items():
    p = GftPlacement(20)
    counts = [0] * 20
    for k in KEYS:
        for s in SHARDS:
            for i in p.nodes(item_id(k, s), r=3):
                counts[i] += 1
    mean = sum(counts) / 20
    assert min(counts) > 0.6 * mean and max(counts) < 1.4 * mean


def test_adding_a_node_moves_few_items():
    a, b = GftPlacement(20), GftPlacement(21)
    items = [item_id(k, s) for k in KEYS[:20] for s in SHARDS]
    moved = sum(a.nodes(i, r=1) != b.nodes(i, r=1) for i in items)
    assert moved < 0.1 * len(items)  # about 1/21 of them


def test_random_placement_needs_its_directory():
    a, b = RandomPlacement(20, seed=1), RandomPlacement(20, seed=1)
    items = [item_id(k, s) for k in KEYS[:5] for s in SHARDS]
    first = [a.nodes(i, r=3) for i in items]
    second = [b.nodes(i, r=3) for i in reversed(items)][::-1]
    assert first != second  # depends on arrival order: a node cannot recompute it
    assert [a.nodes(i, r=3) for i in items] == first  # the directory answers
    assert a.directory_bytes() > 0 and GftPlacement(20).directory_bytes() == 0


def test_full_and_factory():
    assert FullPlacement(4).nodes("x", r=1, local=2) == (2, 0, 1, 3)
    assert make_placement("gft", 5).name == "gft" and make_placement("random", 5).name == "random"
    with pytest.raises(ValueError):
        make_placement("ring", 5)
    with pytest.raises(ValueError):
        GftPlacement(5).nodes("x", r=6)
    with pytest.raises(ValueError):
        GftPlacement(5).nodes("x", r=2, local=5)
