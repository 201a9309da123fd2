"""The tamper suite run against an anchored image file: each tamper is written as a file, verified,
and scored: detected (verification fails), localised (the reported shards are exactly the shards
whose pixels changed), and for the re-encodes, the expected verdict (lossless: still verifies;
lossy JPEG: reported changed yet semantically faithful to the same original)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from prosima.imaging.io import read_image, write_npy
from prosima.imaging.tamper import TAMPERS, tamper
from prosima.provenance.context import Provenance
from prosima.provenance.pixels import differing_shards, pixel_digest, shard_digests
from prosima.provenance.verify import Verdict, verify_loaded

PIXEL_TAMPERS = tuple(TAMPERS)
REENCODES = ("lossless_png", "lossless_npy", "lossy_jpeg")
SUITE = (*PIXEL_TAMPERS, *REENCODES)
JPEG_QUALITY = 90


@dataclass(frozen=True)
class TamperCase:
    """One tampered copy and what verification said of it."""

    kind: str
    path: Path
    verdict: Verdict
    true_shards: list[int]
    record: dict[str, Any]
    original: str  # tx id of the anchored original the copy was made from

    @property
    def expects_ok(self) -> bool:
        return self.kind.startswith("lossless")

    @property
    def detected(self) -> bool:
        return not self.verdict.ok

    @property
    def matched(self) -> bool:
        """The record verification compared the copy with is its original."""
        v = self.verdict
        found = (v.record or {}).get("tx") or (v.nearest or {}).get("tx")
        return found == self.original

    @property
    def localised(self) -> bool:
        return self.matched and sorted(self.verdict.differing_shards) == self.true_shards

    @property
    def passed(self) -> bool:
        """The verdict the suite expects for this kind."""
        v = self.verdict
        if self.expects_ok:
            return v.ok and v.status == "anchored-original" and self.matched
        if self.kind == "lossy_jpeg":
            return (
                self.detected and self.matched and bool(v.nearest and v.nearest.get("semantically_faithful"))
            )
        return self.detected and self.localised

    def to_json(self) -> dict[str, Any]:
        v = self.verdict
        return {
            "kind": self.kind,
            "file": self.path.name,
            "ok": v.ok,
            "status": v.status,
            "detected": self.detected,
            "matched": self.matched,
            "localised": self.localised,
            "passed": self.passed,
            "true_shards": self.true_shards,
            "reported_shards": v.differing_shards,
            "nearest": v.nearest,
            "min_cosine": None if v.shard_cosines is None else float(min(v.shard_cosines)),
            "tamper": self.record,
        }


def _write_copy(
    kind: str, clean_path: Path, clean: np.ndarray, out_dir: Path, seed: int
) -> tuple[Path, dict]:
    stem = clean_path.stem
    if kind == "lossless_png":
        path = out_dir / f"{stem}.{kind}.png"
        with Image.open(clean_path) as img:
            img.save(path, format="PNG", compress_level=9, optimize=True)
        return path, {"name": kind, "compress_level": 9}
    if kind == "lossless_npy":
        path = out_dir / f"{stem}.{kind}.npy"
        write_npy(path, clean)
        return path, {"name": kind, "dtype": "float32"}
    if kind == "lossy_jpeg":
        path = out_dir / f"{stem}.{kind}.jpg"
        Image.fromarray(clean.astype(np.uint8)).save(path, format="JPEG", quality=JPEG_QUALITY)
        return path, {"name": kind, "quality": JPEG_QUALITY}
    t = tamper(clean, kind, seed)
    path = out_dir / f"{stem}.{kind}.png"
    Image.fromarray(np.clip(t.array, 0, 255).astype(np.uint8)).save(path, format="PNG")
    return path, t.record


def run_suite(
    prov: Provenance, clean_path: Path, out_dir: Path, *, seed: int = 0, kinds: tuple[str, ...] = SUITE
) -> list[TamperCase]:
    """Tamper an anchored 8-bit PNG every way in ``kinds`` and verify each copy."""
    out_dir.mkdir(parents=True, exist_ok=True)
    loaded_clean = read_image(clean_path)
    clean = loaded_clean.array
    if loaded_clean.meta.original_dtype != "uint8":
        raise ValueError(f"{clean_path}: the tamper suite works on 8-bit images")
    _, clean_shards = shard_digests(clean, prov.k)
    anchors = [tid.hex() for tid, _, _ in prov.ledger.store.txs_by_key(pixel_digest(clean))]
    if not anchors:
        raise ValueError(f"{clean_path}: not anchored on this ledger")
    cases = []
    for kind in kinds:
        path, record = _write_copy(kind, clean_path, clean, out_dir, seed)
        loaded = read_image(path)
        _, shards = shard_digests(loaded.array, prov.k)
        verdict = verify_loaded(prov, loaded)
        true_shards = differing_shards(shards, clean_shards)
        cases.append(TamperCase(kind, path, verdict, true_shards, record, anchors[0]))
    return cases
