"""Proof of useful work on a toy task (least squares, numpy): every cheat refused with its reason
in the block, the honest best wins, thresholds, signatures, chain verification, determinism."""

from __future__ import annotations

import hashlib
import shutil

import numpy as np
import pytest

from prosima.ledger.errors import LedgerError
from prosima.ledger.log.crypto import NodeKey
from prosima.ledger.log.directory import Ledger
from prosima.ledger.log.encoding import decode, encode
from prosima.ledger.log.registry import Registry
from prosima.ledger.useful_work.behaviour import Behaviour, parse_byzantine
from prosima.ledger.useful_work.chain import POUW_KIND, UsefulWorkChain, check_rounds, read_rounds
from prosima.ledger.useful_work.commitments import commitment, salt_for, validation_seed, weights_hash
from prosima.ledger.useful_work.config import RoundConfig
from prosima.ledger.useful_work.decide import decide
from prosima.ledger.useful_work.messages import SIGN_COMMIT, Delivery, Signed, make_commit, make_reveal
from prosima.ledger.useful_work.play import play_round
from prosima.ledger.useful_work.record import RoundRecord
from prosima.ledger.useful_work.refusals import Refusal

DIM = 6


def _vec(weights: bytes) -> np.ndarray:
    if len(weights) != 8 * DIM:
        raise ValueError(f"expected {8 * DIM} bytes of weights, got {len(weights)}")
    return np.frombuffer(weights, "<f8")


def _seed(seed: bytes) -> np.random.Generator:
    return np.random.default_rng(int.from_bytes(seed[:8], "little"))


class LeastSquares:
    """Fit ``y = X w``: each node has its own shard; the validation batch comes from the seed."""

    def __init__(self, nodes: int, steps: int = 4, lr: float = 0.05) -> None:
        rng = np.random.default_rng(7)
        self.truth = rng.normal(size=DIM)
        self.shards = []
        for _ in range(nodes):
            x = rng.normal(size=(40, DIM))
            self.shards.append((x, x @ self.truth + 0.1 * rng.normal(size=40)))
        self.steps, self.lr = steps, lr

    def train(self, node: int, round_no: int, weights: bytes, seed: bytes) -> bytes:
        w = _vec(weights).copy()
        x, y = self.shards[node]
        rng = _seed(seed)
        for _ in range(self.steps):
            idx = rng.integers(0, len(x), 16)
            w -= self.lr * 2 * x[idx].T @ (x[idx] @ w - y[idx]) / len(idx)
        return w.astype("<f8").tobytes()

    def score(self, weights: bytes, validation_seed: bytes) -> float:
        rng = _seed(validation_seed)
        x = rng.normal(size=(64, DIM))
        y = x @ self.truth + 0.1 * rng.normal(size=64)
        return float(1.0 / (1.0 + np.mean((x @ _vec(weights) - y) ** 2)))

    def distance(self, a: bytes, b: bytes) -> float:
        return float(np.linalg.norm(_vec(a) - _vec(b)))

    def perturb(self, weights: bytes, seed: bytes) -> bytes:
        return (_vec(weights) + 1e-9 * _seed(seed).normal(size=DIM)).astype("<f8").tobytes()


class Worsening(LeastSquares):
    """Training that makes the model worse (so no proposal beats the chain model)."""

    def train(self, node: int, round_no: int, weights: bytes, seed: bytes) -> bytes:
        return (_vec(weights) + 5.0 + node).astype("<f8").tobytes()


class Flaky(LeastSquares):
    """A score that is not deterministic: validators cannot agree."""

    calls = 0

    def score(self, weights: bytes, validation_seed: bytes) -> float:
        Flaky.calls += 1
        return super().score(weights, validation_seed) + 1e-3 * Flaky.calls


GENESIS = np.zeros(DIM, "<f8").tobytes()
CHEATS = {
    1: Behaviour.BAD_REVEAL,
    2: Behaviour.INFLATED_SCORE,
    3: Behaviour.COPY,
    4: Behaviour.NEAR_COPY,
    5: Behaviour.COPY_CHAIN,
    6: Behaviour.LATE,
    7: Behaviour.SILENT,
}
EXPECTED = {
    1: (Refusal.BAD_REVEAL, "do not open the commitment"),
    2: (Refusal.SCORE_MISMATCH, "does not reproduce"),
    3: (Refusal.COPY, "same weights as node 0"),
    4: (Refusal.COPY, "L2 distance"),
    5: (Refusal.COPY, "chain model"),
    6: (Refusal.LATE, "after the deadline"),
    7: (Refusal.NO_REVEAL, "never revealed"),
}


@pytest.fixture(scope="module")
def nodes8() -> tuple[list[NodeKey], Registry]:
    keys = [NodeKey.from_seed(hashlib.sha256(f"pouw-{i}".encode()).digest()) for i in range(8)]
    keys.sort(key=lambda k: k.node_id)
    return keys, Registry(k.public_key for k in keys)


def _play(keys, registry, work=None, **kw):
    kw = {"round_no": 0, "seed": 1, "chain_weights": GENESIS} | kw
    return play_round(work or LeastSquares(len(keys)), keys, registry, **kw)


def test_honest_round_best_score_wins(nodes8):
    keys, registry = nodes8
    out = _play(keys, registry)
    r = out.record
    assert [p.status for p in r.proposals].count("winner") == 1
    assert not r.refusals and not r.dropped and not r.absent
    assert r.score == max(p.score for p in r.proposals)
    assert r.winner is not None and r.proposer == keys[r.winner].node_id
    assert r.weights == weights_hash(out.weights) == r.proposal(r.winner).weights
    assert r.score >= r.threshold == r.chain_score  # no minimum by default: the chain model bounds it
    assert all(p.claimed == p.score for p in r.proposals)
    assert len({p.train_seed for p in r.proposals}) == 8 and len({p.salt for p in r.proposals}) == 8


def test_every_cheat_is_refused_with_its_reason(nodes8):
    keys, registry = nodes8
    r = _play(keys, registry, behaviours=CHEATS).record
    assert r.winner == 0 and r.proposal(0).status == "winner"
    for node, (code, words) in EXPECTED.items():
        p = r.proposal(node)
        assert (p.status, p.code) == ("refused", code), (node, p)
        assert words in p.reason, (node, p.reason)
    assert {p.node for p in r.refusals} == set(CHEATS)
    # the late commitment does not enter the validation seed; the silent one does
    on_time = [p.commitment for p in r.proposals if p.node != 6]
    assert r.validation_seed == validation_seed(0, weights_hash(GENESIS), on_time)
    # the inflated claim is recorded next to the re-evaluated score
    p2 = r.proposal(2)
    assert p2.claimed > p2.score + 0.04


def test_cheaters_alone_leave_the_chain_model(nodes8):
    keys, registry = nodes8
    behaviours = {0: Behaviour.SILENT} | CHEATS
    r = _play(keys, registry, behaviours=behaviours).record
    # without an honest node, copiers steal the inflated-score node's weights
    assert r.winner is None and r.weights == weights_hash(GENESIS) and r.score is None
    assert r.proposal(3).code == Refusal.COPY and "node 2" in r.proposal(3).reason
    assert r.proposal(4).code == Refusal.COPY and "node 2" in r.proposal(4).reason


def test_threshold_minimum_and_chain_model(nodes8):
    keys, registry = nodes8
    r = _play(keys, registry, config=RoundConfig(min_score=0.999)).record
    assert r.winner is None and r.threshold == 0.999
    assert {p.code for p in r.proposals} == {Refusal.BELOW_THRESHOLD}
    # nobody beats a good chain model with training that makes it worse
    work = Worsening(8)
    good = work.truth.astype("<f8").tobytes()
    out = _play(keys, registry, work, chain_weights=good)
    assert out.record.winner is None and out.weights == good
    assert out.record.threshold == out.record.chain_score > 0.5
    assert all("below the threshold" in p.reason for p in out.record.proposals)


def _messages(keys, work, ws=None, ticks=None, round_no=0, prev=GENESIS):
    """Honest commits and reveals, built by hand (``ws``: the weights, ``ticks``: arrival)."""
    p = weights_hash(prev)
    ws = ws or [work.train(i, round_no, prev, bytes([i]) * 32) for i in range(len(keys))]
    ticks = ticks or list(range(len(keys)))
    salts = [salt_for(k, round_no, p) for k in keys]
    cs = [
        commitment(round_no, k.node_id, weights_hash(w), s) for k, w, s in zip(keys, ws, salts, strict=True)
    ]
    commits = [Delivery(make_commit(k, round_no, p, c), t) for k, c, t in zip(keys, cs, ticks, strict=True)]
    v = validation_seed(round_no, p, cs)
    reveals = [
        make_reveal(k, round_no, w, s, work.score(w, v)) for k, w, s in zip(keys, ws, salts, strict=True)
    ]
    return commits, reveals


def _decide(work, registry, commits, reveals, **kw):
    kw = {"round_no": 0, "seed": 1, "chain_weights": GENESIS, "config": RoundConfig()} | kw
    return decide(work, registry, commits=commits, reveals=reveals, **kw)


def test_signatures_are_checked(nodes8, rogue_keys):
    keys, registry = nodes8
    work = LeastSquares(8)
    commits, reveals = _messages(keys, work)
    assert not _decide(work, registry, commits, reveals).dropped
    # a commit signed by an unregistered key, one forged in node 2's name, one from another round
    prev = weights_hash(GENESIS)
    rogue = make_commit(rogue_keys[0], 0, prev, bytes(32))
    body = encode({"v": 1, "round": 0, "prev": prev, "node": keys[2].node_id, "commitment": bytes(32)})
    forged = Signed(body, rogue_keys[1].sign(SIGN_COMMIT, body))
    other_round = Delivery(make_commit(keys[4], 5, prev, bytes(32)), 0)
    # node 3's reveal with its score raised after signing
    fields = decode(reveals[3].body) | {"score": "0.9999"}
    tampered = Signed(encode(fields), reveals[3].signature)
    record = _decide(
        work,
        registry,
        [Delivery(rogue, 0), Delivery(forged, 0), other_round, *commits],
        [tampered if i == 3 else r for i, r in enumerate(reveals)],
    )
    reasons = [d.reason for d in record.dropped]
    assert "signature does not verify for an unregistered node" in reasons
    assert "signature does not verify for the node it names" in reasons
    assert "for round 5, not 0" in reasons
    assert len(reasons) == 4
    # forgeries do not count against node 2; node 3 never validly revealed
    assert record.proposal(2).status in ("valid", "winner")
    assert record.proposal(3).code == Refusal.NO_REVEAL
    assert record.dropped[-1].kind == "reveal" and record.dropped[-1].node_id == keys[3].node_id


def test_equivocation_is_refused(nodes8):
    keys, registry = nodes8
    work = LeastSquares(8)
    commits, reveals = _messages(keys, work)
    second = Delivery(make_commit(keys[5], 0, weights_hash(GENESIS), bytes(32)), 6)
    record = _decide(work, registry, [*commits, second], reveals)
    assert record.proposal(5).code == Refusal.EQUIVOCATION
    assert record.proposal(4).code == ""


def test_identical_weights_keep_the_earliest_commitment(nodes8):
    keys, registry = nodes8
    work = LeastSquares(8)
    ws = [work.train(i, 0, GENESIS, bytes([i]) * 32) for i in range(8)]
    ws[0] = ws[5]  # node 0 holds node 5's weights but commits first: node 5 is the copy then
    commits, reveals = _messages(keys, work, ws, ticks=[0, 1, 2, 3, 4, 9, 6, 7])
    r = _decide(work, registry, commits, reveals)
    assert r.proposal(5).code == Refusal.COPY and "node 0" in r.proposal(5).reason
    assert r.proposal(0).code == ""
    assert [p.node for p in r.proposals] == [0, 1, 2, 3, 4, 6, 7, 5]


@pytest.mark.parametrize(
    "bad",
    [{"min_score": float("nan")}, {"score_tolerance": -1.0}, {"commit_deadline": -1}, {"validators": 0}],
)
def test_round_config_is_checked(bad):
    with pytest.raises(ValueError):
        RoundConfig(**bad)


def test_validators_must_agree(nodes8):
    keys, registry = nodes8
    with pytest.raises(LedgerError, match="validators reached"):
        _play(keys, registry, Flaky(8), config=RoundConfig(validators=3))


def test_record_payload_round_trips(nodes8):
    keys, registry = nodes8
    r = _play(keys, registry, behaviours=CHEATS).record
    back = RoundRecord.from_payload(r.to_payload())
    assert back == r and back.to_payload() == r.to_payload()
    assert r.to_json()["proposals"][0]["node_id"] == keys[r.proposals[0].node].node_id.hex()


def _chain(path, rounds, behaviours, **kw):
    with Ledger.open(path) as ledger:
        chain = UsefulWorkChain(ledger, LeastSquares(len(ledger.registry)), genesis=GENESIS, seed=4, **kw)
        outs = [chain.step(behaviours) for _ in range(rounds)]
        assert not chain.audit()
        return outs, [tx.payload for h in range(ledger.store.height + 1) for tx in ledger.store.block(h).txs]


def test_chain_of_rounds_verifies_and_resumes(tmp_path):
    path = tmp_path / "l"
    Ledger.init(path, nodes=8).close()
    outs, _ = _chain(path, 3, CHEATS)
    assert [o.block.header.height for o in outs] == [0, 1, 2]
    for o in outs:
        assert o.block.txs[0].kind == POUW_KIND
        assert o.block.txs[0].signer == o.record.proposer  # the winner signs its round
        assert RoundRecord.from_payload(o.block.txs[0].payload) == o.record
        assert {p.node: p.code for p in o.record.refusals} == {n: c for n, (c, _) in EXPECTED.items()}
    assert outs[1].record.prev_weights == outs[0].record.weights
    assert outs[2].record.chain_score >= outs[0].record.chain_score
    with Ledger.open(path, verify="full") as ledger:
        assert ledger.verify().ok
        records = read_rounds(ledger)
        assert [r.round for r in records] == [0, 1, 2]
        assert check_rounds(records, weights_hash(GENESIS)) is None
    more, _ = _chain(path, 1, {})
    assert more[0].record.round == 3 and more[0].record.prev_weights == outs[2].record.weights
    with Ledger.open(path, verify="full") as ledger:
        assert ledger.verify().ok and ledger.store.height == 3


def test_altered_chain_model_is_refused(tmp_path):
    path = tmp_path / "l"
    Ledger.init(path, nodes=4).close()
    outs, _ = _chain(path, 1, {})
    stored = path / "pouw" / "weights" / f"{outs[0].record.weights.hex()}.bin"
    stored.chmod(0o600)
    stored.write_bytes(GENESIS)
    with Ledger.open(path) as ledger, pytest.raises(LedgerError, match="altered"):
        UsefulWorkChain(ledger, LeastSquares(4), genesis=GENESIS)


def test_same_seeds_give_the_same_blocks(tmp_path, nodes8):
    keys, registry = nodes8
    a = _play(keys, registry, behaviours=CHEATS).record.to_payload()
    assert a == _play(keys, registry, behaviours=CHEATS).record.to_payload()
    assert a != _play(keys, registry, behaviours=CHEATS, seed=2).record.to_payload()
    Ledger.init(tmp_path / "a", nodes=6).close()
    shutil.copytree(tmp_path / "a", tmp_path / "b")  # the same node keys
    _, one = _chain(tmp_path / "a", 3, {2: Behaviour.COPY, 4: Behaviour.LATE})
    _, two = _chain(tmp_path / "b", 3, {2: Behaviour.COPY, 4: Behaviour.LATE})
    assert one == two and len(one) == 3


def test_check_rounds_finds_breaks(nodes8):
    keys, registry = nodes8
    r0 = _play(keys, registry).record
    assert check_rounds([r0]) is None
    assert check_rounds([r0, r0]) == "record 1 is for round 0"
    stale = _play(keys, registry, round_no=1).record  # round 1 played from the genesis again
    assert "round 1 starts from" in check_rounds([r0, stale])
    assert "starts from" in check_rounds([r0], genesis=bytes(32))


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("", {}),
        ("2:copy,5:inflated_score,7:bad_reveal", {2: "copy", 5: "inflated_score", 7: "bad_reveal"}),
        (" 0 : Silent , 1:near-copy,", {0: "silent", 1: "near_copy"}),
    ],
)
def test_parse_byzantine(spec, expected):
    assert parse_byzantine(spec, 8) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("2copy", "expected NODE:BEHAVIOUR"),
        ("2:lazy", "unknown behaviour 'lazy' for node 2; choose from honest, bad_reveal"),
        ("8:copy", "node 8 is out of range: the 8 nodes are 0..7"),
        ("1:copy,1:late", "node 1 is given twice"),
        ("-1:copy", "expected NODE:BEHAVIOUR"),
    ],
)
def test_parse_byzantine_errors(spec, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(".", r"\.")):
        parse_byzantine(spec, 8)
