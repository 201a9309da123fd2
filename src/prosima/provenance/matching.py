"""Which anchored original a corrupted image is a copy of, and when to refuse to say.

The similarity of an anchored candidate is the mean, over the shards where the candidate has anatomy
(``semantic.background_mask``; all shards for a candidate with none), of the cosine between the
image's shard fingerprint and the candidate's anchored one. Blank shards are left out because every
image has them: counted, they lift a never-anchored brain slice with little anatomy to 0.95 against
any anchored slice.

Scaling: the image is scaled to [0, 1] with its own range (``intensity.model_range``). An image
whose range depends on its content (``.npy``, NIfTI, DICOM: min-max) and carries unclipped noise is
then shifted and shrunk against the intensities its original was fingerprinted from, which drops
the right original's similarity to 0.2-0.7. So for such images the candidates' recorded ranges are
tried too: the distinct ranges of the ``TOP_FOR_RANGES`` best candidates (at most
``MAX_EXTRA_RANGES``), each scoring every candidate anchored with that range.

The rule (``match_rule.MatchRule``): the best candidate is accepted only when its similarity
reaches ``min_similarity`` and it leads the runner-up (the best candidate with other pixels) by the
margin the rule requires. Otherwise nothing is matched and the best candidates are named. The
defaults were calibrated with ``prosima bench restore-match`` (README).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from prosima.errors import Refused
from prosima.provenance.context import Pool, Provenance
from prosima.provenance.index import Indexed
from prosima.provenance.intensity import to_model
from prosima.provenance.match_rule import MatchRule
from prosima.provenance.naming import record_name
from prosima.provenance.records import AnchorRecord
from prosima.provenance.semantic import unit_rows

TOP_FOR_RANGES = 32
MAX_EXTRA_RANGES = 8
RANKED = 16  # candidates kept per image (the runner-up is searched among them)
SHOWN = 3  # candidates named in a refusal
PROBES = 3  # slices of a volume that choose the range its slices are scored in


class Refusal(Refused, ValueError):
    """The ledger does not support the claim asked for; nothing was written or committed."""


class ConstantImage(Refusal):
    """An image whose pixels are all one value: nothing to restore, nothing to match."""


class NoConfidentMatch(Refusal):
    """No anchored original passes the matching rule."""

    def __init__(self, message: str, match: Match | None = None) -> None:
        super().__init__(message)
        self.match = match


def constant_value(array: np.ndarray) -> float | None:
    """The one value of a constant image, or None when its pixels differ."""
    arr = np.asarray(array)
    if arr.size == 0:
        return None
    first = arr.flat[0]
    return float(first) if bool(np.all(arr == first)) else None


def refuse_constant(array: np.ndarray, what: str = "the input") -> None:
    """``ConstantImage`` when ``array`` is constant."""
    value = constant_value(array)
    if value is not None:
        raise ConstantImage(
            f"{what} is a constant image (every pixel {value:g}): it carries no information, so there "
            "is nothing to restore and no original it can be matched to"
        )


@dataclass(frozen=True)
class Candidate:
    """An anchored image, its similarity to the query, and the query scaling it was scored under."""

    item: Indexed[AnchorRecord]
    similarity: float
    value_range: tuple[float, float]

    @property
    def tx(self) -> str:
        return self.item.tx

    def describe(self) -> str:
        return f"{record_name(self.item.record)} (tx {self.tx}, similarity {self.similarity:.3f})"

    def to_json(self) -> dict[str, Any]:
        return {
            "tx": self.tx,
            "height": self.item.height,
            "similarity": self.similarity,
            "name": record_name(self.item.record),
            "source": dict(self.item.record.source),
            "range": list(self.value_range),
        }


@dataclass(frozen=True)
class Match:
    """The ranked candidates of one image and the rule's decision."""

    ranked: list[Candidate]
    rule: MatchRule
    accepted: bool
    reason: str = ""

    @property
    def best(self) -> Candidate | None:
        return self.ranked[0] if self.ranked else None

    @property
    def runner_up(self) -> Candidate | None:
        """The best candidate whose pixels differ from the best's (a duplicate is no rival)."""
        if not self.ranked:
            return None
        pixels = self.ranked[0].item.pixels
        return next((c for c in self.ranked[1:] if c.item.pixels != pixels), None)

    @property
    def margin(self) -> float | None:
        """Best minus runner-up similarity; None when there is no runner-up."""
        best, second = self.best, self.runner_up
        return None if best is None or second is None else best.similarity - second.similarity

    def named(self, n: int = SHOWN) -> str:
        """The first ``n`` candidates, as a refusal names them."""
        return "; ".join(c.describe() for c in self.ranked[:n])

    def to_json(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "reason": self.reason,
            "rule": self.rule.to_json(),
            "margin": self.margin,
            "candidates": [c.to_json() for c in self.ranked[:SHOWN]],
        }


def _similarities(query_rows: np.ndarray, pool: Pool, members: np.ndarray | None = None) -> np.ndarray:
    """Anatomy-shard mean cosine of the query with each pool member (module note)."""
    rows = pool.rows if members is None else pool.rows[members]
    anatomy = pool.anatomy if members is None else pool.anatomy[members]
    cos = np.einsum("kd,nkd->nk", query_rows, rows)
    weight = np.where(anatomy.any(axis=1, keepdims=True), anatomy, True)
    return (cos * weight).sum(axis=1) / weight.sum(axis=1)


def _close(a: tuple[float, float], b: tuple[float, float]) -> bool:
    tol = 1e-6 * max(abs(b[1] - b[0]), 1e-12)
    return abs(a[0] - b[0]) <= tol and abs(a[1] - b[1]) <= tol


def rank(
    prov: Provenance,
    array: np.ndarray,
    own_range: tuple[float, float],
    *,
    fixed_range: bool,
    ranges: list[tuple[float, float]] | None = None,
) -> list[Candidate]:
    """The anchored images of ``array``'s shape, most similar first (the first ``RANKED``).

    ``array`` holds stored values and ``own_range`` the range that maps them to [0, 1];
    ``fixed_range``: that range does not depend on the content (8- and 16-bit PNG/JPEG), so the
    candidates' recorded ranges need not be tried (module note); ``ranges``: the recorded ranges to
    try, instead of those of the best candidates."""
    unit = to_model(array, own_range)
    query = prov.fingerprint(unit)
    pool = prov.pool(query.shape, query.k, query.dim)
    if not pool.items:
        return []
    scores = _similarities(unit_rows(query), pool)
    used: list[tuple[float, float]] = [own_range] * len(pool.items)
    if not fixed_range:
        extra: list[tuple[float, float]] = [r for r in ranges or [] if not _close(r, own_range)]
        for i in np.argsort(-scores, kind="stable")[:TOP_FOR_RANGES] if ranges is None else []:
            r = pool.ranges[int(i)]
            if r is not None and not _close(r, own_range) and r not in extra:
                extra.append(r)
        for r in extra[:MAX_EXTRA_RANGES]:
            members = np.array([i for i, x in enumerate(pool.ranges) if x == r])
            scaled = prov.fingerprint(to_model(array, r))
            scores[members] = _similarities(unit_rows(scaled), pool, members)
            for i in members:
                used[int(i)] = r
    order = np.argsort(-scores, kind="stable")[:RANKED]
    return [Candidate(pool.items[int(i)], float(scores[int(i)]), used[int(i)]) for i in order]


def decide(ranked: list[Candidate], rule: MatchRule) -> Match:
    """Apply ``rule`` to ranked candidates."""
    match = Match(ranked, rule, False)
    best, margin = match.best, match.margin
    if best is None:
        return Match(ranked, rule, False, "no anchored image of this shape on the ledger")
    if rule.accepts(best.similarity, margin):
        return Match(ranked, rule, True)
    if best.similarity < rule.min_similarity:
        reason = f"the nearest anchor's similarity {best.similarity:.3f} is below {rule.min_similarity}"
    else:
        reason = (
            f"the nearest anchor leads the runner-up by {margin:.4f}, less than the "
            f"{rule.required_margin(best.similarity):.4f} required (the larger of {rule.min_margin} "
            f"and {rule.margin_scale} x (1 - similarity))"
        )
    return Match(ranked, rule, False, reason)


def volume_range(
    prov: Provenance, planes: np.ndarray, own_range: tuple[float, float]
) -> list[tuple[float, float]]:
    """The recorded range a volume's slices are best scored in, found on its ``PROBES`` slices with
    the most contrast (each tries the ranges of its best candidates; the most frequent winner), so
    that every slice needs one extra fingerprint at most; ``[]`` when the volume's own range wins."""
    spread = [float(np.std(p)) for p in planes]
    probes = sorted(range(len(planes)), key=lambda z: -spread[z])[:PROBES]
    votes: dict[tuple[float, float], int] = {}
    for z in probes:
        ranked = rank(prov, planes[z], own_range, fixed_range=False)
        if ranked:
            votes[ranked[0].value_range] = votes.get(ranked[0].value_range, 0) + 1
    if not votes:
        return []
    best = max(votes, key=lambda r: votes[r])
    return [] if _close(best, own_range) else [best]


def match_original(
    prov: Provenance,
    array: np.ndarray,
    own_range: tuple[float, float],
    *,
    fixed_range: bool,
    rule: MatchRule,
    ranges: list[tuple[float, float]] | None = None,
) -> Match:
    """Rank the anchored images against ``array`` and apply ``rule``."""
    return decide(rank(prov, array, own_range, fixed_range=fixed_range, ranges=ranges), rule)
