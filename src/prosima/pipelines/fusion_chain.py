"""Proof-of-useful-work consensus on the BMIF fusion network: each round the ledger's nodes train
the chain's fusion model on their own shards of the training pairs, and the validators keep the
best proposal by its unsupervised fusion score on a validation batch drawn from the round's
validation seed (``prosima.ledger.useful_work`` has the protocol; this is its work and its run).

The work: weights are ``fusion.checkpoint.weights_to_bytes`` bytes; node ``i`` trains with
``fusion.train.train_steps`` (a few Adam steps on random crops of shard ``i``, a seeded split of
the training pairs); ``score`` is ``fusion.train.score`` (``1 - mean fusion loss``, float64, one
thread) on ``val_crops`` crops of the validation pairs whose pairs and positions come from the
validation seed; ``distance`` is the L2 norm between the parameter vectors.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from prosima.fusion.checkpoint import model_from_bytes, weights_to_bytes
from prosima.fusion.data import load_pairs, split_pairs
from prosima.fusion.network import FusionConfig, FusionNet
from prosima.fusion.train import score as fusion_score
from prosima.fusion.train import train_steps
from prosima.ledger.errors import LedgerError
from prosima.ledger.log.directory import Ledger
from prosima.ledger.useful_work.behaviour import Behaviour, parse_byzantine
from prosima.ledger.useful_work.chain import UsefulWorkChain
from prosima.ledger.useful_work.commitments import weights_hash
from prosima.ledger.useful_work.config import RoundConfig
from prosima.ledger.useful_work.play import RoundOutcome

NEAR_COPY_DISTANCE = 1e-6  # how far ``perturb`` moves the weights (below RoundConfig.copy_distance)


def _int_seed(seed: bytes) -> int:
    return int.from_bytes(hashlib.sha256(seed).digest()[:8], "little") >> 1


@contextmanager
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _pairs(x: np.ndarray | torch.Tensor, what: str) -> np.ndarray:
    arr = np.asarray(x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x, dtype=np.float32)
    if arr.ndim != 4 or arr.shape[1] != 2 or len(arr) == 0:
        raise ValueError(f"{what} must be (N >= 1, 2, H, W) source pairs, got {arr.shape}")
    return arr


class FusionWork:
    """``UsefulWork`` for ``FusionNet``: see the module docstring."""

    def __init__(
        self,
        train_pairs: np.ndarray | torch.Tensor,
        val_pairs: np.ndarray | torch.Tensor,
        *,
        nodes: int,
        steps: int = 4,
        lr: float = 1e-3,
        batch: int = 4,
        crop: int = 64,
        val_crops: int = 4,
        seed: int = 0,
        config: FusionConfig | None = None,
    ) -> None:
        self.train_pairs = _pairs(train_pairs, "the training pairs")
        self.val_pairs = _pairs(val_pairs, "the validation pairs")
        if nodes < 1 or steps < 1 or batch < 1 or val_crops < 1:
            raise ValueError("nodes, steps, batch and val_crops must be >= 1")
        self.steps, self.lr, self.batch, self.crop, self.val_crops = steps, lr, batch, crop, val_crops
        self.config = config or FusionConfig()
        self._vectors: dict[bytes, np.ndarray] = {}
        order = np.random.default_rng(seed).permutation(len(self.train_pairs))
        # node i's shard: every nodes-th pair of a seeded order (a pair is shared when there are fewer)
        self.shards = [order[i::nodes] if i < len(order) else order[[i % len(order)]] for i in range(nodes)]

    def genesis(self, seed: int = 0) -> bytes:
        """A fresh network's weights (the output layer starts at zero: the mean of the sources)."""
        torch.manual_seed(seed)
        return weights_to_bytes(FusionNet(self.config))

    def _model(self, weights: bytes) -> FusionNet:
        return model_from_bytes(weights, self.config)

    def train(self, node: int, round_no: int, weights: bytes, seed: bytes) -> bytes:
        """``steps`` Adam steps on node ``node``'s shard from ``weights``."""
        with _one_thread():
            shard = self.train_pairs[self.shards[node]]
            model = train_steps(
                self._model(weights),
                shard,
                self.steps,
                seed=_int_seed(seed),
                lr=self.lr,
                batch=self.batch,
                crop=self.crop,
            )
        return weights_to_bytes(model)

    def validation_batch(self, validation_seed: bytes) -> np.ndarray:
        """The ``val_crops`` crops (``crop`` x ``crop``, or whole pairs) the seed selects."""
        rng = np.random.default_rng(_int_seed(validation_seed))
        n, _, h, w = self.val_pairs.shape
        c = min(self.crop, h, w) if self.crop > 0 else min(h, w)
        idx = rng.integers(0, n, self.val_crops)
        ys, xs = rng.integers(0, h - c + 1, self.val_crops), rng.integers(0, w - c + 1, self.val_crops)
        return np.stack(
            [self.val_pairs[i, :, y : y + c, x : x + c] for i, y, x in zip(idx, ys, xs, strict=True)]
        )

    def score(self, weights: bytes, validation_seed: bytes) -> float:
        """``fusion.train.score`` on the seed's validation batch."""
        return fusion_score(self._model(weights), self.validation_batch(validation_seed))

    def _vector(self, weights: bytes) -> np.ndarray:
        """The parameters as one float64 vector (kept for the last few weights: a round measures
        every proposal against every earlier one)."""
        key = hashlib.sha256(weights).digest()
        vec = self._vectors.get(key)
        if vec is None:
            state = self._model(weights).state_dict()
            vec = np.concatenate([state[k].numpy().ravel().astype(np.float64) for k in sorted(state)])
            if len(self._vectors) >= 256:
                self._vectors.pop(next(iter(self._vectors)))
            self._vectors[key] = vec
        return vec

    def distance(self, a: bytes, b: bytes) -> float:
        """L2 distance between the parameter vectors."""
        return float(np.linalg.norm(self._vector(a) - self._vector(b)))

    def perturb(self, weights: bytes, seed: bytes) -> bytes:
        """``weights`` moved by L2 distance about ``NEAR_COPY_DISTANCE`` in a seeded direction."""
        model = self._model(weights)
        gen = torch.Generator().manual_seed(_int_seed(seed))
        params = list(model.parameters())
        noise = [torch.randn(p.shape, generator=gen) for p in params]
        norm = float(torch.sqrt(sum((z.double() ** 2).sum() for z in noise)))
        with torch.no_grad():
            for p, z in zip(params, noise, strict=True):
                p.add_(z * (NEAR_COPY_DISTANCE / norm))
        return weights_to_bytes(model)


def _load_split(data_root: str | Path | None, pair: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Training and validation pairs of the Harvard AANLIB ``pair`` (seeded split by pair)."""
    pairs = load_pairs(data_root, pair)
    split = split_pairs(len(pairs.names), seed)
    return pairs.sources[split.train], pairs.sources[split.val]


def _open_ledger(path: Path, nodes: int) -> Ledger:
    if not path.exists() or (path.is_dir() and not any(path.iterdir())):
        return Ledger.init(path, nodes=nodes)
    ledger = Ledger.open(path)
    if len(ledger.registry) != nodes:
        n = len(ledger.registry)
        ledger.close()
        raise LedgerError(f"{path} has {n} registered nodes, not the {nodes} asked for")
    return ledger


def _round_summary(out: RoundOutcome) -> dict[str, Any]:
    r = out.record
    return {
        "round": r.round,
        "height": None if out.block is None else out.block.header.height,
        "winner": r.winner,
        "proposer": None if r.proposer is None else r.proposer.hex(),
        "score": r.score,
        "chain_score": r.chain_score,
        "threshold": r.threshold,
        "weights": r.weights.hex(),
        "validation_seed": r.validation_seed.hex(),
        "valid": [p.node for p in r.proposals if p.status in ("valid", "winner")],
        "refusals": [{"node": p.node, "code": p.code, "reason": p.reason} for p in r.refusals],
        "dropped": [d.reason for d in r.dropped],
        "seconds": dict(out.seconds),
    }


def run_chain(
    ledger_dir: str | Path,
    nodes: int,
    rounds: int,
    byzantine: str | Mapping[int, Behaviour] | None = None,
    seed: int = 0,
    *,
    train_pairs: np.ndarray | torch.Tensor | None = None,
    val_pairs: np.ndarray | torch.Tensor | None = None,
    data_root: str | Path | None = None,
    pair: str = "ct",
    steps: int = 4,
    lr: float = 1e-3,
    batch: int = 4,
    crop: int = 64,
    val_crops: int = 4,
    min_score: float = -math.inf,
    validators: int | None = None,
    config: FusionConfig | None = None,
) -> dict[str, Any]:
    """Play ``rounds`` PoUW rounds of fusion training among ``nodes`` nodes on the ledger at
    ``ledger_dir`` (created with ``nodes`` nodes when absent or empty; resumed when it already has
    rounds), ``byzantine`` naming the cheats (``"2:copy,5:inflated_score"``). The pairs default to
    the seeded train / validation split of the Harvard AANLIB ``pair`` under ``data_root``.
    Returns a JSON-ready summary (per round: winner, scores, threshold, refusals with reasons,
    block height, seconds; then chain verification and the re-scoring audit); prints nothing."""
    start = time.perf_counter()
    if rounds < 0:
        raise ValueError(f"rounds must be >= 0, got {rounds}")
    if not 1 <= nodes <= 1024:
        raise ValueError(f"nodes must be between 1 and 1024, got {nodes}")
    cheats = parse_byzantine(byzantine, nodes) if isinstance(byzantine, str) else dict(byzantine or {})
    if train_pairs is None or val_pairs is None:
        loaded = _load_split(data_root, pair, seed)
        train_pairs = loaded[0] if train_pairs is None else train_pairs
        val_pairs = loaded[1] if val_pairs is None else val_pairs
    work = FusionWork(
        train_pairs,
        val_pairs,
        nodes=nodes,
        steps=steps,
        lr=lr,
        batch=batch,
        crop=crop,
        val_crops=val_crops,
        seed=seed,
        config=config,
    )
    path = Path(ledger_dir)
    rules = RoundConfig(min_score=min_score, validators=validators)
    with _open_ledger(path, nodes) as ledger:
        chain = UsefulWorkChain(ledger, work, genesis=work.genesis(seed), seed=seed, config=rules)
        first = len(chain.records)
        outs = [chain.step(cheats) for _ in range(rounds)]
        report = ledger.verify()
        audit = chain.audit()
        summary = {
            "ledger": str(path),
            "nodes": nodes,
            "seed": seed,
            "byzantine": {str(i): str(b) for i, b in sorted(cheats.items())},
            "rules": {
                "min_score": rules.min_score if math.isfinite(rules.min_score) else None,
                "score_tolerance": rules.score_tolerance,
                "copy_distance": rules.copy_distance,
                "commit_deadline": rules.deadline(nodes),
                "validators": nodes if validators is None else min(nodes, validators),
            },
            "first_round": first,
            "rounds": [_round_summary(o) for o in outs],
            "weights": weights_hash(chain.weights).hex(),
            "height": ledger.store.height,
            "chain_ok": report.ok,
            "chain_fault": None if report.fault is None else str(report.fault),
            "audit": audit,
            "train_pairs": len(work.train_pairs),
            "val_pairs": len(work.val_pairs),
        }
    summary["seconds"] = time.perf_counter() - start
    return summary
