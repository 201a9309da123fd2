"""Verifying a volume: every slice as a 2-D image (``verify.verify_array``), a constant one by its place.

A constant image carries no information: its pixels are those of every blank slice anchored, so
``verify.verify_array`` never takes it for one record (status ``constant``). Inside a volume its place
can say which it is. A constant slice ``z`` of a volume is the anchored original when both hold:

1. an anchor record holds exactly its pixels and is bound to this very slice: it records slice index
   ``z`` along this volume's slice axis (anchoring records both in clear, ``anchor.slices_of``) and
   its keyed link is the link this slice's instance gets under this ledger's site key
   (``site_key.instance_of``: the slice's DICOM UIDs, else the file's name), so a renamed file, another
   series, or another slice position does not pass;
2. the volume is the anchored one: each of its other slices is an exact anchored original bound to
   its own place in the same way (a constant one by 1.), and at least one has content. A NIfTI
   file's link is only its name, which another volume may carry; its anatomy it cannot. A volume of
   which any slice is changed, blanked or moved is not the anchored volume, so its blank slices stay
   ``constant``, with the reason.

Nothing is bound without the site key: without it no link can be compared.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from prosima.imaging.io import LoadedImage, read_volume
from prosima.provenance.context import Provenance
from prosima.provenance.index import Indexed, Record, RecordIndex
from prosima.provenance.intensity import model_range
from prosima.provenance.records import AnchorRecord
from prosima.provenance.site_key import SITE_KEY_FILE, SiteKey, instance_of
from prosima.provenance.verify import Verdict, attest, verify_array

SHOWN = 5  # slices named when the volume is not the anchored one


def bound_anchor(
    index: RecordIndex, pixels: str, link: dict[str, str], z: int, axis: int
) -> Indexed[Record] | None:
    """The anchor of exactly ``pixels`` (hex digest) recorded as slice ``z`` along ``axis`` with the
    keyed ``link``; ``None`` when there is none."""
    for tx in index.by_pixels.get(pixels, []):
        item = index.by_tx[tx]
        record = item.record
        if (
            isinstance(record, AnchorRecord)
            and record.link
            and record.link == link
            and record.source.get("slice") == str(z)
            and record.source.get("axis") == str(axis)
        ):
            return item
    return None


def _named(slices: list[int]) -> str:
    more = f" and {len(slices) - SHOWN} more" if len(slices) > SHOWN else ""
    return f"{slices[:SHOWN]}{more}"


def _volume_problem(
    index: RecordIndex, verdicts: list[Verdict], links: list[dict[str, str]], axis: int
) -> str | None:
    """Why the volume is not shown to be the anchored one; ``None`` when every slice of it is an
    anchored original bound to its place (a constant one by its own record) and one has content."""
    if all(v.constant is not None for v in verdicts):
        return "every slice of this volume is constant, so nothing in it shows it is the anchored volume"
    unbound = [
        z
        for z, v in enumerate(verdicts)
        if (v.constant is None and not (v.ok and v.status == "anchored-original"))
        or bound_anchor(index, v.pixels, links[z], z, axis) is None
    ]
    if unbound:
        return (
            f"slices {_named(unbound)} of this volume are not its anchored originals at their places, "
            "so it is not shown to be the anchored volume"
        )
    return None


def bind_constant_slices(prov: Provenance, verdicts: list[Verdict], loaded: LoadedImage, axis: int) -> None:
    """Turn each ``constant`` verdict among a volume's slice ``verdicts`` (in slice order along
    ``axis`` of ``loaded``) into an anchored original where the rule above binds it; each one left
    ``constant`` is given the reason."""
    blank = [z for z, v in enumerate(verdicts) if v.status == "constant"]
    if not blank:
        return
    key = SiteKey.find(prov.ledger.path)
    if key is None:
        for z in blank:
            verdicts[z].reasons.append(
                f"no site key beside this ledger ({SITE_KEY_FILE}), so no record can be bound to this slice"
            )
        return
    index = prov.index.refresh()
    links = [key.link(instance_of(loaded, z)) for z in range(len(verdicts))]
    problem = _volume_problem(index, verdicts, links, axis)
    witnesses = sum(v.constant is None for v in verdicts)
    for z in blank:
        v = verdicts[z]
        item = bound_anchor(index, v.pixels, links[z], z, axis)
        if item is None:
            v.reasons.append(
                f"no anchor of these pixels is bound to this slice: none records slice {z} (axis {axis}) "
                "with this slice's instance link"
            )
            continue
        if problem is not None:
            v.reasons.append(f"record {item.tx} is of this slice, but {problem}")
            continue
        v.reasons = []  # the constant-image caveat is answered by the binding below
        v.status = "anchored-original"
        attest(prov, v, item)
        v.ok = not v.reasons
        v.binding = _binding(v, z, axis, witnesses)


def _binding(v: Verdict, z: int, axis: int, witnesses: int) -> dict[str, Any]:
    return {
        "slice": z,
        "axis": axis,
        "by": ["slice index", "instance link", "the volume's other slices"],
        "reason": (
            f"constant slice (every pixel {v.constant:g}), which carries no information of its own: "
            f"bound by its place, its record is of slice {z} (axis {axis}) of this file or series "
            f"(its instance link), and the volume's {witnesses} slices with content are its anchored "
            "originals at their places"
        ),
    }


def verify_volume(prov: Provenance, path: str | Path) -> list[Verdict]:
    """Verify every slice of a NIfTI volume or DICOM series folder, scaled with the volume's one range
    (as anchoring and volume restoration scale it), a constant slice by its place."""
    loaded, axis = read_volume(path)
    value_range = model_range(loaded)
    verdicts = [verify_array(prov, plane, value_range) for plane in np.moveaxis(loaded.array, axis, 0)]
    bind_constant_slices(prov, verdicts, loaded, axis)
    return verdicts
