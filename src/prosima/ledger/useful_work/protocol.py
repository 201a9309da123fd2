"""Proof of useful work (after Ball, Rosen, Sabin and Vasudevan, "Proofs of Useful Work"): the
ledger's nodes earn a round by training a model instead of hashing. Weights are opaque bytes and
the work (``UsefulWork``) is anything that trains, scores deterministically and measures distance.

One round ``r`` from the chain model ``W`` (``prev = SHA-256(W)``), nodes indexed as the registry
sorts their ids:

1. Train. Node ``i`` trains from ``W`` with ``train_seed_i = H("train", seed, r, i)`` to ``w_i``.
2. Commit. It draws ``salt_i = SHA-256(its Ed25519 signature of (r, prev))`` (deterministic, yet
   unknowable without its key) and sends a signed ``commit{r, prev, node id, c_i}`` with
   ``c_i = H("commit", r, node id, SHA-256(w_i), salt_i)``. The network stamps each commit with
   the tick it arrived; those after the deadline (``RoundConfig.commit_deadline``) are late.
3. Validation seed. ``v = H("validation", r, prev, sorted on-time commitments)`` (each node's
   first to arrive): fixed only once every commitment is, so nobody can fit the validation batch
   in advance, and withholding a reveal cannot change it.
4. Reveal. Node ``i`` sends a signed ``reveal{r, node id, w_i, salt_i, claimed score}``.
5. Validate. Every validator independently runs ``decide``, a pure function of the messages: it
   re-scores every proposal and the chain model on ``v``; the threshold is
   ``max(min_score, score(W, v))``, so a winner is never worse than the chain model.
6. Decide. The best valid proposal at or above the threshold wins (ties: the earliest commitment);
   the round record (every seed, commitment, salt, score and refusal with its reason, the winner's
   weights hash, score and node id) is committed through the ledger's consensus ``Committee`` as a
   ``pouw.round`` transaction signed by the winner, so the PoUW chain is an ordinary ledger chain.

Refusals, checked in this order for each committing node in commitment order (tick, then index):
``equivocation`` (two different signed commits or reveals), ``late`` (commit after the deadline),
``no_reveal`` (committed, never revealed), ``bad_reveal`` (weights and salt do not open the
commitment), ``copy`` (weights hash equal to the chain model's or to an earlier commitment's
revealed weights, or ``distance`` to either below ``copy_distance``), ``invalid_weights`` (the work
cannot evaluate them), ``score_mismatch`` (``|claimed - re-evaluated| > score_tolerance``; scores
are re-evaluated on one deterministic CPU path, so honest claims reproduce bit for bit and the
default 1e-6 only absorbs summation-order differences between builds) and ``below_threshold``.
Messages whose signature, encoding, round or chain model do not check are dropped unattributed
(``dropped``): anyone can forge them, so they never count against the node they name.

Limits: as in any commit-then-reveal beacon, the last node to commit could grind its commitment
to bias ``v`` (a deployment would add a VRF or a delay function); the network and its ticks are
simulated in process (``play_round``), with the ledger's consensus as the only real protocol.
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from prosima.ledger.consensus.committee import Committee
from prosima.ledger.errors import EncodingError, LedgerError
from prosima.ledger.log.block import Block
from prosima.ledger.log.crypto import NodeKey
from prosima.ledger.log.directory import Entry, Ledger
from prosima.ledger.log.encoding import decode, encode, expect_map
from prosima.ledger.log.registry import Registry

POUW_KIND = "pouw.round"
POUW_KEY = b"pouw.round"
RECORD_FORMAT = "prosima.pouw-round.v1"
WEIGHTS_DIR = Path("pouw") / "weights"

SIGN_COMMIT = b"PROSIMA/sign/pouw-commit/v1\x00"
SIGN_REVEAL = b"PROSIMA/sign/pouw-reveal/v1\x00"
SIGN_SALT = b"PROSIMA/sign/pouw-salt/v1\x00"
_COMMIT_DOMAIN = b"PROSIMA/pouw/commitment/v1\x00"
_VALIDATION_DOMAIN = b"PROSIMA/pouw/validation-seed/v1\x00"
_TRAIN_DOMAIN = b"PROSIMA/pouw/train-seed/v1\x00"
_PERTURB_DOMAIN = b"PROSIMA/pouw/perturb-seed/v1\x00"


class UsefulWork(Protocol):
    """The work the nodes do. ``score`` and ``distance`` must be deterministic functions of their
    arguments; ``score`` and ``distance`` raise ``ValueError`` for bytes that are not weights."""

    def train(self, node: int, round_no: int, weights: bytes, seed: bytes) -> bytes:
        """Node ``node``'s new weights, trained on its own data from ``weights``."""
        ...

    def score(self, weights: bytes, validation_seed: bytes) -> float:
        """How good ``weights`` are on the validation batch drawn from ``validation_seed``
        (higher is better)."""
        ...

    def distance(self, a: bytes, b: bytes) -> float:
        """L2 distance between two weight vectors (``inf`` when they are not comparable)."""
        ...

    def perturb(self, weights: bytes, seed: bytes) -> bytes:
        """``weights`` nudged by far less than any honest training step (the near-copy cheat)."""
        ...


class Behaviour(StrEnum):
    """How a simulated node plays a round."""

    HONEST = "honest"
    BAD_REVEAL = "bad_reveal"  # reveals weights other than those it committed to
    INFLATED_SCORE = "inflated_score"  # claims a better score than its weights earn
    COPY = "copy"  # submits another node's weights (stolen), committing after it
    NEAR_COPY = "near_copy"  # the same, nudged so the hash differs
    COPY_CHAIN = "copy_chain"  # resubmits the chain model without training
    LATE = "late"  # commits after the deadline
    SILENT = "silent"  # commits and never reveals


class Refusal(StrEnum):
    """Why a proposal cannot win."""

    EQUIVOCATION = "equivocation"
    LATE = "late"
    NO_REVEAL = "no_reveal"
    BAD_REVEAL = "bad_reveal"
    COPY = "copy"
    INVALID_WEIGHTS = "invalid_weights"
    SCORE_MISMATCH = "score_mismatch"
    BELOW_THRESHOLD = "below_threshold"


_ITEM = re.compile(r"\s*(\d+)\s*:\s*([A-Za-z_-]+)\s*")


def parse_byzantine(spec: str, nodes: int) -> dict[int, Behaviour]:
    """Read ``NODE:BEHAVIOUR[,NODE:BEHAVIOUR...]`` (e.g. ``"2:copy,5:inflated_score,7:bad_reveal"``)
    into node index -> behaviour; ``ValueError`` naming the problem for anything else."""
    out: dict[int, Behaviour] = {}
    names = ", ".join(b.value for b in Behaviour)
    for item in spec.split(","):
        if not item.strip():
            continue
        m = _ITEM.fullmatch(item)
        if m is None:
            raise ValueError(
                f"cannot read {item.strip()!r} in --byzantine; expected NODE:BEHAVIOUR, "
                "e.g. '2:copy,5:inflated_score'"
            )
        node, name = int(m[1]), m[2].lower().replace("-", "_")
        try:
            behaviour = Behaviour(name)
        except ValueError:
            raise ValueError(f"unknown behaviour {m[2]!r} for node {node}; choose from {names}") from None
        if not 0 <= node < nodes:
            raise ValueError(f"node {node} is out of range: the {nodes} nodes are 0..{nodes - 1}")
        if node in out:
            raise ValueError(f"node {node} is given twice")
        out[node] = behaviour
    return out


# -- hashing ---------------------------------------------------------------------------------


def weights_hash(weights: bytes) -> bytes:
    """SHA-256 of the weight bytes (their content address)."""
    return hashlib.sha256(weights).digest()


def _h(domain: bytes, *parts: Any) -> bytes:
    return hashlib.sha256(domain + encode(list(parts))).digest()


def commitment(round_no: int, node_id: bytes, weights_digest: bytes, salt: bytes) -> bytes:
    """The hiding, binding commitment to a node's weights in round ``round_no``."""
    return _h(_COMMIT_DOMAIN, round_no, node_id, weights_digest, salt)


def validation_seed(round_no: int, prev: bytes, commitments: Sequence[bytes]) -> bytes:
    """The round's validation seed: a hash of the round, the chain model and every on-time
    commitment (one per node, sorted)."""
    return _h(_VALIDATION_DOMAIN, round_no, prev, sorted(commitments))


def train_seed(seed: int, round_no: int, node: int) -> bytes:
    """Node ``node``'s training seed in round ``round_no`` of the chain seeded with ``seed``."""
    return _h(_TRAIN_DOMAIN, seed, round_no, node)


def salt_for(key: NodeKey, round_no: int, prev: bytes) -> bytes:
    """The node's commitment salt: a hash of its (deterministic) signature of the round."""
    return hashlib.sha256(key.sign(SIGN_SALT, encode([round_no, prev]))).digest()


def _num(x: float | None) -> str | None:
    """A float as its shortest round-trip text (the canonical encoding has no floats)."""
    return None if x is None else repr(float(x))


def _float(s: str | None) -> float | None:
    return None if s is None else float(s)


# -- messages --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Signed:
    """A canonical CBOR body and its signer's Ed25519 signature over a context label and it."""

    body: bytes
    signature: bytes

    @classmethod
    def make(cls, key: NodeKey, context: bytes, fields: Mapping[str, Any]) -> Signed:
        """Encode ``fields`` and sign them."""
        body = encode(dict(fields))
        return cls(body, key.sign(context, body))


@dataclass(frozen=True, slots=True)
class Delivery:
    """A commit as the network delivered it: the message and the tick it arrived at."""

    message: Signed
    tick: int


_COMMIT_FIELDS = {"v": int, "round": int, "prev": bytes, "node": bytes, "commitment": bytes}
_REVEAL_FIELDS = {"v": int, "round": int, "node": bytes, "weights": bytes, "salt": bytes, "score": str}


def make_commit(key: NodeKey, round_no: int, prev: bytes, commit: bytes) -> Signed:
    """A signed commit message."""
    fields = {"v": 1, "round": round_no, "prev": prev, "node": key.node_id, "commitment": commit}
    return Signed.make(key, SIGN_COMMIT, fields)


def make_reveal(key: NodeKey, round_no: int, weights: bytes, salt: bytes, claimed: float) -> Signed:
    """A signed reveal message."""
    fields = {"v": 1, "round": round_no, "node": key.node_id, "weights": weights, "salt": salt}
    return Signed.make(key, SIGN_REVEAL, fields | {"score": _num(claimed)})


def open_message(
    msg: Signed, context: bytes, fields: Mapping[str, type], registry: Registry, round_no: int
) -> dict[str, Any] | str:
    """The checked fields of ``msg``, or why it is dropped (encoding, version, signature, round)."""
    try:
        value = expect_map(decode(msg.body), fields, "message")
    except EncodingError as exc:
        return f"malformed: {exc}"
    if value["v"] != 1:
        return f"unsupported version {value['v']}"
    if not registry.verify(value["node"], context, msg.body, msg.signature):
        who = "an unregistered node" if value["node"] not in registry else "the node it names"
        return f"signature does not verify for {who}"
    if value["round"] != round_no:
        return f"for round {value['round']}, not {round_no}"
    return value


# -- the round record ------------------------------------------------------------------------


@dataclass(frozen=True)
class RoundConfig:
    """The validators' rules. A winner scores at least ``min_score`` (default ``-inf``: only the
    chain model's score bounds it); ``commit_deadline`` is in network ticks (``None``: twice the
    node count); ``validators`` is how many nodes re-run ``decide`` (``None``: all)."""

    min_score: float = -math.inf
    score_tolerance: float = 1e-6
    copy_distance: float = 1e-5
    commit_deadline: int | None = None
    validators: int | None = None

    def __post_init__(self) -> None:
        if math.isnan(self.min_score) or self.min_score == math.inf:
            raise ValueError("min_score must be a number below infinity (-inf: no minimum)")
        if not (self.score_tolerance >= 0 and self.copy_distance >= 0):
            raise ValueError("score_tolerance and copy_distance must be >= 0")
        if self.commit_deadline is not None and self.commit_deadline < 0:
            raise ValueError("commit_deadline must be >= 0")
        if self.validators is not None and self.validators < 1:
            raise ValueError("validators must be >= 1")

    def deadline(self, nodes: int) -> int:
        """The commit deadline for ``nodes`` nodes."""
        return 2 * nodes if self.commit_deadline is None else self.commit_deadline


@dataclass(frozen=True)
class Proposal:
    """One committing node's proposal and the validators' verdict on it."""

    node: int
    node_id: bytes
    tick: int
    commitment: bytes
    train_seed: bytes
    salt: bytes | None = None
    weights: bytes | None = None  # SHA-256 of the revealed weights
    claimed: float | None = None
    score: float | None = None  # as re-evaluated by the validators
    status: str = "refused"  # "winner", "valid" or "refused"
    code: str = ""  # a Refusal when refused
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "node_id": self.node_id,
            "tick": self.tick,
            "commitment": self.commitment,
            "train_seed": self.train_seed,
            "salt": self.salt,
            "weights": self.weights,
            "claimed": _num(self.claimed),
            "score": _num(self.score),
            "status": self.status,
            "code": self.code,
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Proposal:
        return cls(**(dict(d) | {"claimed": _float(d["claimed"]), "score": _float(d["score"])}))

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready view (bytes as hex)."""
        return _hexed(self.to_dict() | {"claimed": self.claimed, "score": self.score})


@dataclass(frozen=True)
class Dropped:
    """A message refused before it could be attributed to its node."""

    kind: str  # "commit" or "reveal"
    node_id: bytes  # the node it names (unproven)
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "node_id": self.node_id, "reason": self.reason}


@dataclass(frozen=True)
class RoundRecord:
    """What a decided round puts on the ledger."""

    round: int
    seed: int
    prev_weights: bytes
    validation_seed: bytes
    deadline: int
    min_score: float
    score_tolerance: float
    copy_distance: float
    chain_score: float
    threshold: float
    proposals: tuple[Proposal, ...]
    dropped: tuple[Dropped, ...] = ()
    absent: tuple[int, ...] = ()  # nodes that sent no valid commit
    winner: int | None = None
    proposer: bytes | None = None
    score: float | None = None
    weights: bytes = b""  # the chain model's hash after the round
    format: str = field(default=RECORD_FORMAT)

    @property
    def refusals(self) -> list[Proposal]:
        """The refused proposals, in commitment order."""
        return [p for p in self.proposals if p.status == "refused"]

    def proposal(self, node: int) -> Proposal | None:
        """Node ``node``'s proposal, if it committed."""
        return next((p for p in self.proposals if p.node == node), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "round": self.round,
            "seed": self.seed,
            "prev_weights": self.prev_weights,
            "validation_seed": self.validation_seed,
            "deadline": self.deadline,
            "min_score": _num(self.min_score),
            "score_tolerance": _num(self.score_tolerance),
            "copy_distance": _num(self.copy_distance),
            "chain_score": _num(self.chain_score),
            "threshold": _num(self.threshold),
            "proposals": [p.to_dict() for p in self.proposals],
            "dropped": [d.to_dict() for d in self.dropped],
            "absent": list(self.absent),
            "winner": self.winner,
            "proposer": self.proposer,
            "score": _num(self.score),
            "weights": self.weights,
        }

    def to_payload(self) -> bytes:
        """The canonical CBOR payload of the ledger transaction."""
        return encode(self.to_dict())

    @classmethod
    def from_payload(cls, data: bytes) -> RoundRecord:
        """Decode a payload written by ``to_payload``; ``EncodingError`` when it is not one."""
        d = decode(data)
        if not isinstance(d, dict) or d.get("format") != RECORD_FORMAT:
            raise EncodingError(f"not a {RECORD_FORMAT} record")
        try:
            floats = ("min_score", "score_tolerance", "copy_distance", "chain_score", "threshold", "score")
            return cls(
                **(
                    d
                    | {k: _float(d[k]) for k in floats}
                    | {
                        "proposals": tuple(Proposal.from_dict(p) for p in d["proposals"]),
                        "dropped": tuple(Dropped(**x) for x in d["dropped"]),
                        "absent": tuple(d["absent"]),
                    }
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise EncodingError(f"malformed {RECORD_FORMAT} record: {exc}") from None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready view (bytes as hex, scores as numbers)."""
        floats = ("min_score", "score_tolerance", "copy_distance", "chain_score", "threshold", "score")
        out = _hexed(self.to_dict() | {k: _finite(getattr(self, k)) for k in floats})
        out["proposals"] = [p.to_json() for p in self.proposals]
        return out


def _finite(x: float | None) -> float | None:
    """``x`` for JSON: ``None`` for no value or an infinite one (no minimum)."""
    return x if x is not None and math.isfinite(x) else None


def _hexed(d: Mapping[str, Any]) -> dict[str, Any]:
    def conv(v: Any) -> Any:
        if isinstance(v, bytes):
            return v.hex()
        if isinstance(v, list):
            return [conv(x) for x in v]
        if isinstance(v, dict):
            return {k: conv(x) for k, x in v.items()}
        return v

    return {k: conv(v) for k, v in d.items()}


# -- validation ------------------------------------------------------------------------------


def _evaluate(work: UsefulWork, weights: bytes, seed: bytes) -> float | str:
    """The work's score, or why it cannot be had."""
    try:
        s = float(work.score(weights, seed))
    except (ValueError, TypeError, EncodingError) as exc:
        return f"the work cannot evaluate the weights: {exc}"
    return s if math.isfinite(s) else f"the work scores the weights {s}"


def decide(
    work: UsefulWork,
    registry: Registry,
    *,
    round_no: int,
    seed: int,
    chain_weights: bytes,
    commits: Sequence[Delivery],
    reveals: Sequence[Signed],
    config: RoundConfig,
) -> RoundRecord:
    """One validator's verdict on a round: a pure, deterministic function of the messages (see
    the module docstring for the order of the checks)."""
    node_ids = list(registry.members)
    index_of = {nid: i for i, nid in enumerate(node_ids)}
    prev = weights_hash(chain_weights)
    deadline = config.deadline(len(node_ids))
    dropped: list[Dropped] = []

    def drop(kind: str, msg: Signed, reason: str) -> None:
        try:
            nid = decode(msg.body).get("node", b"")
        except (EncodingError, AttributeError):
            nid = b""
        dropped.append(Dropped(kind, nid if isinstance(nid, bytes) else b"", reason))

    commit_of: dict[int, tuple[int, bytes]] = {}  # node -> (tick, commitment) of its first commit
    equivocal: set[int] = set()
    for d in sorted(commits, key=lambda d: d.tick):
        value = open_message(d.message, SIGN_COMMIT, _COMMIT_FIELDS, registry, round_no)
        if isinstance(value, dict) and value["prev"] != prev:
            value = f"commits on chain model {value['prev'].hex()[:16]}..., not {prev.hex()[:16]}..."
        if isinstance(value, str):
            drop("commit", d.message, value)
            continue
        i = index_of[value["node"]]
        if i in commit_of and commit_of[i][1] != value["commitment"]:
            equivocal.add(i)
        commit_of.setdefault(i, (d.tick, value["commitment"]))
    on_time = [c for i, (t, c) in commit_of.items() if t <= deadline]
    v = validation_seed(round_no, prev, on_time)

    reveal_of: dict[int, dict[str, Any]] = {}
    for msg in reveals:
        value = open_message(msg, SIGN_REVEAL, _REVEAL_FIELDS, registry, round_no)
        if isinstance(value, str):
            drop("reveal", msg, value)
            continue
        i = index_of[value["node"]]
        if i not in commit_of:
            drop("reveal", msg, "no commitment from this node")
        elif i in reveal_of and reveal_of[i] != value:
            equivocal.add(i)
        else:
            reveal_of[i] = value

    chain_score = _evaluate(work, chain_weights, v)
    if isinstance(chain_score, str):
        raise LedgerError(f"round {round_no}: the chain model cannot be scored: {chain_score}")
    threshold = max(config.min_score, chain_score)
    ctx = _Round(work, config, round_no, chain_weights, prev, v, threshold, deadline)

    proposals: list[Proposal] = []
    opened: list[tuple[int, bytes, bytes]] = []  # (node, weights hash, weights) of opened commitments
    for i in sorted(commit_of, key=lambda i: (commit_of[i][0], i)):
        tick, c = commit_of[i]
        base = Proposal(i, node_ids[i], tick, c, train_seed(seed, round_no, i))
        r = reveal_of.get(i)
        if r is not None:
            base = replace(base, salt=r["salt"], weights=weights_hash(r["weights"]))
        verdict = _judge(ctx, base, r, opened, i in equivocal)
        proposals.append(verdict)
        if verdict.code not in (Refusal.EQUIVOCATION, Refusal.LATE, Refusal.NO_REVEAL, Refusal.BAD_REVEAL):
            assert r is not None
            opened.append((i, weights_hash(r["weights"]), r["weights"]))

    valid = [p for p in proposals if p.status == "valid"]
    best = max(valid, key=lambda p: (p.score, -p.tick, -p.node), default=None)
    if best is not None:
        proposals = [replace(p, status="winner") if p is best else p for p in proposals]
    absent = tuple(i for i in range(len(node_ids)) if i not in commit_of)
    return RoundRecord(
        round=round_no,
        seed=seed,
        prev_weights=prev,
        validation_seed=v,
        deadline=deadline,
        min_score=config.min_score,
        score_tolerance=config.score_tolerance,
        copy_distance=config.copy_distance,
        chain_score=chain_score,
        threshold=threshold,
        proposals=tuple(proposals),
        dropped=tuple(dropped),
        absent=absent,
        winner=None if best is None else best.node,
        proposer=None if best is None else best.node_id,
        score=None if best is None else best.score,
        weights=prev if best is None or best.weights is None else best.weights,
    )


@dataclass(frozen=True)
class _Round:
    """What every verdict of a round shares."""

    work: UsefulWork
    config: RoundConfig
    round_no: int
    chain_weights: bytes
    prev: bytes
    validation_seed: bytes
    threshold: float
    deadline: int


def _judge(
    ctx: _Round,
    p: Proposal,
    reveal: Mapping[str, Any] | None,
    opened: Sequence[tuple[int, bytes, bytes]],
    equivocal: bool,
) -> Proposal:
    """``p`` with its verdict."""

    def refuse(code: Refusal, reason: str, **more: Any) -> Proposal:
        return replace(p, **more, status="refused", code=str(code), reason=reason)

    if equivocal:
        return refuse(Refusal.EQUIVOCATION, "sent two different signed commits or reveals this round")
    if p.tick > ctx.deadline:
        return refuse(Refusal.LATE, f"commitment arrived at tick {p.tick}, after the deadline {ctx.deadline}")
    if reveal is None:
        return refuse(Refusal.NO_REVEAL, "committed but never revealed")
    weights, digest = reveal["weights"], weights_hash(reveal["weights"])
    claimed = _claimed(reveal["score"])
    if commitment(ctx.round_no, p.node_id, digest, reveal["salt"]) != p.commitment:
        return refuse(
            Refusal.BAD_REVEAL, "revealed weights and salt do not open the commitment", claimed=claimed
        )
    if digest == ctx.prev:
        return refuse(Refusal.COPY, "the weights are the current chain model's", claimed=claimed)
    for j, other, _ in opened:
        if other == digest:
            return refuse(Refusal.COPY, f"the same weights as node {j}'s earlier commitment", claimed=claimed)
    near = _nearest(ctx.work, weights, ctx.chain_weights, opened)
    if isinstance(near, str):
        return refuse(Refusal.INVALID_WEIGHTS, near, claimed=claimed)
    limit = ctx.config.copy_distance
    if near is not None and near[1] < limit:
        whose = "the chain model" if near[0] is None else f"node {near[0]}'s earlier commitment"
        return refuse(
            Refusal.COPY,
            f"within L2 distance {near[1]:.3g} of {whose} (copies are below {limit:g})",
            claimed=claimed,
        )
    score = _evaluate(ctx.work, weights, ctx.validation_seed)
    if isinstance(score, str):
        return refuse(Refusal.INVALID_WEIGHTS, score, claimed=claimed)
    tol = ctx.config.score_tolerance
    if claimed is None or not abs(claimed - score) <= tol:
        return refuse(
            Refusal.SCORE_MISMATCH,
            f"claimed score {reveal['score']} does not reproduce: re-evaluated {score!r} (tolerance {tol:g})",
            claimed=claimed,
            score=score,
        )
    if score < ctx.threshold:
        return refuse(
            Refusal.BELOW_THRESHOLD,
            f"score {score:.6g} is below the threshold {ctx.threshold:.6g}",
            claimed=claimed,
            score=score,
        )
    return replace(p, claimed=claimed, score=score, status="valid")


def _claimed(text: str) -> float | None:
    try:
        x = float(text)
    except ValueError:
        return None
    return x if math.isfinite(x) else None


def _nearest(
    work: UsefulWork, weights: bytes, chain_weights: bytes, opened: Sequence[tuple[int, bytes, bytes]]
) -> tuple[int | None, float] | str | None:
    """(node or None for the chain model, distance) of the nearest earlier weights; a string when
    the work cannot measure them."""
    best: tuple[int | None, float] | None = None
    for j, w in [(None, chain_weights), *((j, w) for j, _, w in opened)]:
        try:
            d = float(work.distance(weights, w))
        except (ValueError, TypeError) as exc:
            return f"the work cannot measure the weights: {exc}"
        if best is None or d < best[1]:
            best = (j, d)
    return best


# -- simulated rounds ------------------------------------------------------------------------


@dataclass
class RoundOutcome:
    """A decided round: the record, the chain model after it, the block that holds the record
    (once committed) and where the time went."""

    record: RoundRecord
    weights: bytes
    block: Block | None = None
    seconds: dict[str, float] = field(default_factory=dict)


def _copy_target(i: int, behaviours: Mapping[int, Behaviour], n: int) -> int | None:
    """Whose weights copier ``i`` steals: the first honest node, else the first that reveals them
    (inflated score), else the first that trains (``None``: nobody trains: the chain model)."""
    trains = [j for j in range(n) if j != i and behaviours.get(j, Behaviour.HONEST) not in _COPIERS]
    for wanted in (Behaviour.HONEST, Behaviour.INFLATED_SCORE):
        picks = [j for j in trains if behaviours.get(j, Behaviour.HONEST) == wanted]
        if picks:
            return picks[0]
    return trains[0] if trains else None


_COPIERS = frozenset({Behaviour.COPY, Behaviour.NEAR_COPY, Behaviour.COPY_CHAIN})


def play_round(
    work: UsefulWork,
    keys: Sequence[NodeKey],
    registry: Registry,
    *,
    round_no: int,
    seed: int,
    chain_weights: bytes,
    behaviours: Mapping[int, Behaviour] | None = None,
    config: RoundConfig | None = None,
) -> RoundOutcome:
    """Simulate one round among the nodes holding ``keys`` (in registry order): each trains, commits
    and reveals as its behaviour says (default honest), then ``config.validators`` nodes run
    ``decide`` independently; ``LedgerError`` if they disagree (the work is not deterministic).

    The simulated network delivers node ``i``'s commit at tick ``i``, a copier's at ``n + i``
    (after the node it copies) and a late node's at ``deadline + 1 + i``."""
    config = config or RoundConfig()
    behaviours = dict(behaviours or {})
    n = len(keys)
    if [k.node_id for k in keys] != list(registry.members):
        raise LedgerError("play_round needs the key of every registered node, in registry (node id) order")
    unknown = sorted(set(behaviours) - set(range(n)))
    if unknown:
        raise LedgerError(f"behaviours name nodes {unknown}, outside 0..{n - 1}")
    prev = weights_hash(chain_weights)
    deadline = config.deadline(n)
    t0 = time.perf_counter()

    def role(i: int) -> Behaviour:
        return behaviours.get(i, Behaviour.HONEST)

    trained = {
        i: work.train(i, round_no, chain_weights, train_seed(seed, round_no, i))
        for i in range(n)
        if role(i) not in _COPIERS
    }
    committed: dict[int, bytes] = dict(trained)
    for i in range(n):
        if role(i) in _COPIERS:
            target = None if role(i) == Behaviour.COPY_CHAIN else _copy_target(i, behaviours, n)
            stolen = chain_weights if target is None else trained[target]
            if role(i) == Behaviour.NEAR_COPY:
                stolen = work.perturb(stolen, _h(_PERTURB_DOMAIN, seed, round_no, i))
            committed[i] = stolen
    t1 = time.perf_counter()

    salts = {i: salt_for(keys[i], round_no, prev) for i in range(n)}
    commits: list[Delivery] = []
    on_time: list[bytes] = []  # what every node sees at the deadline
    for i in range(n):
        c = commitment(round_no, keys[i].node_id, weights_hash(committed[i]), salts[i])
        ticks = {Behaviour.LATE: deadline + 1 + i, Behaviour.COPY: n + i, Behaviour.NEAR_COPY: n + i}
        tick = ticks.get(role(i), i)
        commits.append(Delivery(make_commit(keys[i], round_no, prev, c), tick))
        if tick <= deadline:
            on_time.append(c)
    v = validation_seed(round_no, prev, on_time)

    reveals: list[Signed] = []
    for i in range(n):
        if role(i) == Behaviour.SILENT:
            continue
        shown = committed[i]
        if role(i) == Behaviour.BAD_REVEAL:
            shown = work.perturb(shown, _h(_PERTURB_DOMAIN, seed, round_no, i, "reveal"))
        claimed = float(work.score(shown, v))
        if role(i) == Behaviour.INFLATED_SCORE:
            claimed += max(0.05, 1000 * config.score_tolerance)
        reveals.append(make_reveal(keys[i], round_no, shown, salts[i], claimed))
    t2 = time.perf_counter()

    count = n if config.validators is None else min(n, config.validators)
    records = [
        decide(
            work,
            registry,
            round_no=round_no,
            seed=seed,
            chain_weights=chain_weights,
            commits=commits,
            reveals=reveals,
            config=config,
        )
        for _ in range(count)
    ]
    payloads = {r.to_payload() for r in records}
    if len(payloads) != 1:
        raise LedgerError(
            f"round {round_no}: the {count} validators reached {len(payloads)} different records"
        )
    record = records[0]
    if record.validation_seed != v:
        raise LedgerError(f"round {round_no}: the validators' validation seed is not the nodes'")
    weights = chain_weights if record.winner is None else committed[record.winner]
    t3 = time.perf_counter()
    seconds = {"train": t1 - t0, "commit_reveal": t2 - t1, "validate": t3 - t2, "total": t3 - t0}
    return RoundOutcome(record, weights, None, seconds)


# -- the chain on a ledger -------------------------------------------------------------------


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
                scores = [("chain model", start, r.chain_score)]
                if r.winner is not None:
                    scores.append((f"winner {r.winner}", self.load_weights(r.weights), r.score))
            except LedgerError as exc:
                problems.append(f"round {r.round}: {exc}")
                continue
            for what, w, recorded in scores:
                got = _evaluate(self.work, w, r.validation_seed)
                if isinstance(got, str) or recorded is None or abs(got - recorded) > r.score_tolerance:
                    problems.append(
                        f"round {r.round}: the {what} re-scores {got}, the record says {recorded}"
                    )
        return problems
