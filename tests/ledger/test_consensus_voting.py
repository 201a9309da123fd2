"""Voting power: the count rule is the store's; capped degree weights keep any f nodes, hubs
included, under a third; the paper's uncapped degree weights let 3 hubs certify two blocks."""

from __future__ import annotations

import itertools

import pytest

from prosima.ledger.consensus.overlay import Overlay
from prosima.ledger.consensus.voting import VotingPower, capped_weights, max_faulty
from prosima.ledger.log.registry import quorum_threshold


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6, 7, 10, 19, 20, 21])
def test_count_rule_is_the_store_threshold(n):
    p = VotingPower.make("count", [1] * n)
    assert p.threshold == p.count_threshold == quorum_threshold(n)
    assert p.f == max_faulty(n) == (n - 1) // 3
    assert p.is_quorum(range(p.threshold)) and not p.is_quorum(range(p.threshold - 1))
    # two quorums overlap in more than f nodes, so in at least one honest node
    assert 2 * p.threshold - n > p.f
    assert p.tolerates(range(p.f)) and not p.tolerates(range(p.f + 1))


def _forks(power: VotingPower, byzantine: set[int]) -> bool:
    """Can the honest nodes be split in two halves that each reach a quorum with the byzantine ones?"""
    honest = sorted(set(range(power.n)) - byzantine, key=lambda i: -power.weights[i])
    left: set[int] = set()
    right: set[int] = set()
    for i in honest:  # greedy balanced split by weight
        (left if power.weight(left) <= power.weight(right) else right).add(i)
    return power.is_quorum(byzantine | left) and power.is_quorum(byzantine | right)


@pytest.mark.parametrize("seed", range(60))
def test_capped_weights_keep_any_f_nodes_under_a_third(seed):
    for n in (7, 13, 20, 31):
        o = Overlay.barabasi_albert(n, 2, seed)
        p = VotingPower.make("degree-capped", o.degrees)
        f = p.f
        top = sorted(range(n), key=lambda i: -p.weights[i])[:f]
        assert p.weight(top) <= p.weight_bound, (n, p.weights)
        assert p.tolerates(o.hubs(f)) and p.tolerates(top)
        assert 2 * p.threshold - p.total > p.weight_bound  # weighted quorums intersect in honest weight
        assert not _forks(p, set(o.hubs(f)))
        assert max(p.weights) <= p.cap


def test_uncapped_degree_weights_let_three_hubs_certify_two_blocks():
    unsafe = 0
    for seed in range(40):
        o = Overlay.barabasi_albert(20, 2, seed)
        hubs = set(o.hubs(3))
        paper = VotingPower.make("degree", o.degrees)
        count = VotingPower.make("count", o.degrees)
        capped = VotingPower.make("degree-capped", o.degrees)
        assert not _forks(count, hubs) and not _forks(capped, hubs)
        if _forks(paper, hubs):
            unsafe += 1
            assert not paper.tolerates(hubs)
    assert unsafe >= 10


def test_cap_search_small_cases():
    assert capped_weights([5, 1, 1, 1]) == ((1, 1, 1, 1), 1)
    weights, cap = capped_weights([3, 3, 3])  # f = 0: nothing to cap
    assert weights == (3, 3, 3) and cap == 3
    for degrees in itertools.product([1, 2, 5, 9], repeat=4):
        w, _ = capped_weights(degrees)
        assert max(w) <= (sum(w) - 1) // 3  # n = 4, f = 1


def test_bad_rules():
    with pytest.raises(ValueError):
        VotingPower("vote", (1, 1))
    with pytest.raises(ValueError):
        VotingPower("count", ())
