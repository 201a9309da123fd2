"""The PoUW chain on a ledger: round records as ``pouw.round`` transactions committed by the
ledger's consensus, every chain model stored by content address, and the audit that re-checks it."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from prosima.ledger.consensus.committee import Committee
from prosima.ledger.errors import LedgerError
from prosima.ledger.log.directory import Entry, Ledger
from prosima.ledger.useful_work.behaviour import Behaviour
from prosima.ledger.useful_work.commitments import weights_hash
from prosima.ledger.useful_work.config import RoundConfig
from prosima.ledger.useful_work.play import RoundOutcome, play_round
from prosima.ledger.useful_work.record import RoundRecord
from prosima.ledger.useful_work.work import UsefulWork, evaluate

POUW_KIND = "pouw.round"
POUW_KEY = b"pouw.round"
WEIGHTS_DIR = Path("pouw") / "weights"


def read_rounds(ledger: Ledger) -> list[RoundRecord]:
    """Every ``pouw.round`` record on ``ledger``, in chain order."""
    out = []
    for tx_id, _height, _index in ledger.store.txs_by_key(POUW_KEY):
        tx, _, _ = ledger.store.find_tx(tx_id)
        if tx.kind == POUW_KIND:
            out.append(RoundRecord.from_payload(tx.payload))
    return out


def check_rounds(records: Sequence[RoundRecord], genesis: bytes | None = None) -> str | None:
    """The first break in a sequence of round records (``None``: they chain): round numbers count
    from 0, each round starts from the model the previous one ended with (the first from the
    ``genesis`` hash, when given), and each ends with its winner's weights or, without one, its
    start."""
    expect = genesis
    for k, r in enumerate(records):
        if r.round != k:
            return f"record {k} is for round {r.round}"
        if expect is not None and r.prev_weights != expect:
            return f"round {k} starts from {r.prev_weights.hex()[:16]}..., not {expect.hex()[:16]}..."
        won = r.proposal(r.winner) if r.winner is not None else None
        if r.winner is None and r.weights != r.prev_weights:
            return f"round {k} has no winner yet changes the chain model"
        if r.winner is not None and (won is None or won.status != "winner" or won.weights != r.weights):
            return f"round {k}'s winner {r.winner} does not match its proposals"
        if r.winner is not None and (r.score is None or r.score < r.threshold):
            return f"round {k}'s winning score is below its threshold"
        expect = r.weights
    return None


class UsefulWorkChain:
    """The PoUW chain of a ledger directory: rounds played among its registered nodes, decided
    records committed by its consensus ``Committee``, and every chain model kept by content
    address under ``pouw/weights/`` (so a later run resumes and anyone can re-score a winner)."""

    def __init__(
        self,
        ledger: Ledger,
        work: UsefulWork,
        *,
        genesis: bytes,
        seed: int = 0,
        config: RoundConfig | None = None,
        committee: Committee | None = None,
    ) -> None:
        self.ledger, self.work, self.seed = ledger, work, seed
        self.config = config or RoundConfig()
        self.committee = committee or Committee(ledger, seed=seed)
        by_id = {k.node_id: k for k in ledger.keys}
        missing = [nid.hex() for nid in ledger.registry.members if nid not in by_id]
        if missing:
            raise LedgerError(f"the PoUW simulation needs every node's key; {len(missing)} are not in keys/")
        self.keys = [by_id[nid] for nid in ledger.registry.members]
        self.records = read_rounds(ledger)
        problem = check_rounds(self.records)
        if problem is not None:
            raise LedgerError(f"the PoUW chain on {ledger.path} does not chain: {problem}")
        if self.records:
            self.weights = self.load_weights(self.records[-1].weights)
        else:
            self.weights = genesis
            self.save_weights(genesis)

    @property
    def nodes(self) -> int:
        """Number of nodes playing (every registered node)."""
        return len(self.keys)

    @property
    def weights_dir(self) -> Path:
        return Path(self.ledger.path) / WEIGHTS_DIR

    def save_weights(self, weights: bytes) -> bytes:
        """Store ``weights`` under their hash; returns the hash."""
        digest = weights_hash(weights)
        path = self.weights_dir / f"{digest.hex()}.bin"
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(weights)
            tmp.replace(path)
        return digest

    def load_weights(self, digest: bytes) -> bytes:
        """The stored weights with hash ``digest``; ``LedgerError`` when absent or altered."""
        path = self.weights_dir / f"{digest.hex()}.bin"
        if not path.is_file():
            raise LedgerError(f"chain model {digest.hex()} is not stored in {self.weights_dir}")
        data = path.read_bytes()
        if weights_hash(data) != digest:
            raise LedgerError(f"{path} does not hash to its name: altered")
        return data

    def step(self, behaviours: Mapping[int, Behaviour] | None = None) -> RoundOutcome:
        """Play the next round, store the new chain model and commit the record; the outcome holds
        the block."""
        round_no = len(self.records)
        outcome = play_round(
            self.work,
            self.keys,
            self.ledger.registry,
            round_no=round_no,
            seed=self.seed,
            chain_weights=self.weights,
            behaviours=behaviours,
            config=self.config,
        )
        self.save_weights(outcome.weights)
        t = time.perf_counter()
        entry = Entry(outcome.record.to_payload(), POUW_KIND, POUW_KEY)
        outcome.block = self.committee.commit([entry], origin=outcome.record.winner)
        outcome.seconds["commit"] = time.perf_counter() - t
        outcome.seconds["total"] += outcome.seconds["commit"]
        self.records.append(outcome.record)
        self.weights = outcome.weights
        return outcome

    def audit(self) -> list[str]:
        """Re-check the chain from the ledger: the records chain, and every round's chain model
        and winner re-score to what the record says (from the stored weights)."""
        records = read_rounds(self.ledger)
        problems = []
        problem = check_rounds(records)
        if problem is not None:
            problems.append(problem)
        for r in records:
            try:
                start = self.load_weights(r.prev_weights)
                scores: list[tuple[str, bytes, float | None]] = [("chain model", start, r.chain_score)]
                if r.winner is not None:
                    scores.append((f"winner {r.winner}", self.load_weights(r.weights), r.score))
            except LedgerError as exc:
                problems.append(f"round {r.round}: {exc}")
                continue
            for what, w, recorded in scores:
                got = evaluate(self.work, w, r.validation_seed)
                if isinstance(got, str) or recorded is None or abs(got - recorded) > r.score_tolerance:
                    problems.append(
                        f"round {r.round}: the {what} re-scores {got}, the record says {recorded}"
                    )
        return problems
