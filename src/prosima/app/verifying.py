"""Verify a file against the ledger: is it exactly an anchored image or a trusted restoration, which
shards differ, which instance its record is of; for a 2-D image also its PROV and in-toto exports
and the tamper heatmap, for a volume every slice. One call opens the ledger for itself; many calls
share a ``prosima.app.session.Session``."""

from __future__ import annotations

from pathlib import Path

from prosima.app.session import Session
from prosima.app.verify_input import read_verify_input
from prosima.app.verify_results import InstanceLink, VerifyResult, VolumeVerifyResult
from prosima.provenance.heatmap import save_heatmap

__all__ = ["InstanceLink", "VerifyResult", "VolumeVerifyResult", "verify_file", "write_heatmap"]


def verify_file(
    image: Path,
    ledger: Path,
    *,
    registry: Path | None = None,
    since: Path | None = None,
    prov_export: bool = False,
    intoto_export: bool = False,
    heatmap: bool = False,
) -> VerifyResult | VolumeVerifyResult:
    """Verify ``image`` (a 2-D image, or every slice of a volume) against ``ledger``.

    ``registry``: trust only these node keys (else ``$PROSIMA_TRUSTED_REGISTRY``); ``since``: a
    tree head kept earlier that the ledger must extend. ``prov_export`` / ``intoto_export`` ask for
    the W3C PROV document and the signed in-toto statement of the verification, ``heatmap`` for
    the tamper heatmap: 2-D images only."""
    found = read_verify_input(image, heatmap=heatmap, prov_export=prov_export, intoto_export=intoto_export)
    with Session.open(ledger, "direct", trusted=registry) as session:
        return session.verify_input(found, since=since, prov_export=prov_export, intoto_export=intoto_export)


def write_heatmap(result: VerifyResult, path: Path) -> Path:
    """The tamper heatmap of a verified 2-D image (differing shards, shard cosines) as a PNG."""
    v = result.verdict
    return save_heatmap(path, result.unit, result.k, v.differing_shards, v.shard_cosines, v.status)
