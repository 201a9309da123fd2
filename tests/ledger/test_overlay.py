"""The Barabasi-Albert overlay: seeded, hub-ordered, and the degree concentration that makes
degree-weighted votes unsafe."""

from __future__ import annotations

import pytest

from prosima.ledger.consensus.overlay import Overlay


def test_same_seed_same_graph_other_seed_other_graph():
    a, b = Overlay.barabasi_albert(20, 2, 7), Overlay.barabasi_albert(20, 2, 7)
    assert a.edges == b.edges and a.degrees == b.degrees
    assert Overlay.barabasi_albert(20, 2, 8).edges != a.edges


@pytest.mark.parametrize(("n", "m"), [(20, 2), (20, 1), (7, 3), (30, 2)])
def test_edges_degrees_and_hub_order(n, m):
    o = Overlay.barabasi_albert(n, m, 3)
    assert len(o.edges) == (n - m) * m
    assert sum(o.degrees) == 2 * len(o.edges)
    assert sorted(o.by_degree) == list(range(n))
    assert [o.degrees[i] for i in o.by_degree] == sorted(o.degrees, reverse=True)
    assert o.hubs(3) == o.by_degree[:3]
    assert all(len(o.neighbours(i)) == o.degrees[i] for i in range(n))


@pytest.mark.parametrize("n", [1, 2, 3])
def test_tiny_overlays(n):
    o = Overlay.barabasi_albert(n, 2, 0)
    assert len(o.degrees) == n and o.hubs(n) == o.by_degree
    with pytest.raises(ValueError):
        o.hubs(n + 1)


def test_top_three_hubs_often_hold_over_a_third_of_degree():
    shares = [Overlay.barabasi_albert(20, 2, s) for s in range(100)]
    over = sum(o.degree_share(o.hubs(3)) > 1 / 3 for o in shares)
    assert over >= 25  # about half of 20-node BA(m=2) graphs; a degree-weighted vote is unsafe there
    assert Overlay.barabasi_albert(20, 2, 0).to_json()["top3_degree_share"] > 0


def test_bad_arguments():
    with pytest.raises(ValueError):
        Overlay.barabasi_albert(0)
    with pytest.raises(ValueError):
        Overlay.barabasi_albert(5, 0)
