"""Erasure coding: any m losses lose nothing, m + 1 fail cleanly; the storage trade-off against
replication, and the network's accounting of it."""

from __future__ import annotations

import itertools
import random

import pytest

pytest.importorskip("zfec")

from prosima.ledger.consensus.erasure import ErasureCode, ErasureError
from prosima.ledger.consensus.placement import GftPlacement, item_id
from prosima.ledger.consensus.storage import StorageAccount
from prosima.ledger.sim.network import Network, NetworkConfig
from prosima.ledger.sim.workload import make_workload, stand_in_shard_ids


@pytest.mark.parametrize(("k", "m"), [(1, 0), (1, 2), (2, 1), (3, 2), (4, 3), (8, 2)])
@pytest.mark.parametrize("size", [0, 1, 5, 64, 4096, 4097])
def test_any_m_losses_rebuild_and_m_plus_1_fail(k, m, size):
    code = ErasureCode(k, m)
    data = random.Random(size).randbytes(size)
    frags = code.encode(data)
    assert len(frags) == k + m and {len(f) for f in frags} == {code.fragment_size(max(size, 1))}
    for lost in itertools.combinations(range(k + m), m):
        left = {i: f for i, f in enumerate(frags) if i not in lost}
        assert code.decode(left, size) == data
    if k + m > 1:
        for lost in list(itertools.combinations(range(k + m), m + 1))[:10]:
            left = {i: f for i, f in enumerate(frags) if i not in lost}
            with pytest.raises(ErasureError, match="are needed"):
                code.decode(left, size)


def test_fragments_on_distinct_nodes_survive_node_losses():
    code, n = ErasureCode(8, 2), 20
    p = GftPlacement(n)
    rng = random.Random(0)
    stored: dict[int, dict[str, tuple[int, bytes]]] = {i: {} for i in range(n)}
    originals = {}
    for j in range(40):
        item = item_id(rng.randbytes(32), f"{j:032x}")
        data = originals[item] = rng.randbytes(4096)
        for frag_index, (node, frag) in enumerate(
            zip(p.nodes(item, r=code.n, local=j % n), code.encode(data), strict=True)
        ):
            stored[node][item] = (frag_index, frag)
    for trial in range(5):
        lost = set(random.Random(trial).sample(range(n), 2))
        for item, data in originals.items():
            frags = dict(v[item] for node, v in stored.items() if node not in lost and item in v)
            assert code.decode(frags, len(data)) == data
    # three losses chosen against one item break it, cleanly
    item = next(iter(originals))
    holders = [node for node, v in stored.items() if item in v]
    frags = dict(stored[node][item] for node in holders[3:])
    with pytest.raises(ErasureError):
        code.decode(frags, 4096)


def test_storage_account_replication_and_losses():
    acc = StorageAccount(5)
    acc.add_copies("payload", 100, [0, 1, 2])
    acc.add("payload", 100, dict.fromkeys([0, 1, 2, 3, 4], 34), need=3)
    acc.add_copies("ledger", 10, range(5))
    acc.add_overhead("directory", dict.fromkeys(range(5), 7))
    j = acc.to_json()
    assert j["losses_survived_by_category"] == {"payload": 2, "ledger": 4}
    assert acc.losses_survived() == 2
    assert acc.replication("payload") == pytest.approx((300 + 170) / 200)
    assert j["per_node_bytes"][0] == 100 + 34 + 10 + 7
    with pytest.raises(ValueError):
        acc.add("payload", 1, {0: 1}, need=2)


def test_network_trade_off_replication_against_erasure():
    wl = make_workload(12, nodes=20, seed=2, shard_ids=stand_in_shard_ids(16))
    out = {}
    for name, kw in {
        "r3": {"replication": 3},
        "ec82": {"erasure": (8, 2)},
        "full": {"system": "full"},
    }.items():
        cfg = NetworkConfig(nodes=20, seed=2, batch=12, hubs=0, **kw)
        with Network(cfg) as net:
            net.run(wl)
            from prosima.ledger.sim.network import account_storage

            out[name] = account_storage(net, wl)
    assert out["r3"].replication("payload") == pytest.approx(3.0)
    assert out["ec82"].replication("payload") == pytest.approx(1.25)
    assert out["full"].replication("payload") == pytest.approx(20.0)
    assert out["r3"].survives["payload"] == 2 == out["ec82"].survives["payload"]
    assert out["full"].survives["payload"] == 19
    with pytest.raises(ValueError):
        ErasureCode.parse("8")
    with pytest.raises(ValueError):
        NetworkConfig(nodes=5, erasure=(4, 2))
