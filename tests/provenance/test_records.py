"""Image records and the digests they hold: payloads round-trip and a tampered one is refused;
canonical pixel digests depend on the values alone; shard digests localise a change; the
fingerprint store names each fingerprint by its hash and refuses one that does not match."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from PIL import Image

from prosima.imaging.io import read_image, write_npy, write_png
from prosima.imaging.shards import plan_shards
from prosima.ledger.log.encoding import decode, encode
from prosima.ledger.log.merkle import root_hash
from prosima.models.fingerprint import Fingerprint
from prosima.provenance.fingerprint_store import (
    FingerprintStore,
    FingerprintStoreError,
    fingerprint_bytes,
    fingerprint_digest,
    fingerprint_from_bytes,
    shard_fingerprint_digests,
)
from prosima.provenance.pixels import (
    canonical_pixels,
    differing_shards,
    pixel_digest,
    shard_digests,
)
from prosima.provenance.records import (
    ANCHOR_FORMAT,
    RESTORATION_FORMAT,
    AnchorRecord,
    RecordError,
    RestorationRecord,
    shard_leaf,
)


def h(tag: str) -> str:
    return hashlib.sha256(tag.encode()).hexdigest()


def anchor(k: int = 4, **changes) -> AnchorRecord:
    grid = plan_shards((64, 48), k, 0)
    fields = {
        "pixels": h("pixels"),
        "shape": (64, 48),
        "k": k,
        "shard_ids": [s.shard_id for s in grid.shards],
        "shard_pixels": [h(f"p{i}") for i in range(k)],
        "shard_fingerprints": [h(f"f{i}") for i in range(k)],
        "fingerprint": h("fingerprint"),
        "encoder": h("encoder"),
        "source": {"format": "png", "range": "0.0,255.0"},
        "link": {"key": h("site")[:16], "file": h("a.png")},
    }
    return AnchorRecord(**(fields | changes))


RESTORATION = RestorationRecord(
    input_pixels=h("in"),
    output_pixels=h("out"),
    output_shard_pixels=[h(f"o{i}") for i in range(4)],
    original=h("anchor-tx"),
    model=h("weights"),
    model_name="prosima-full",
    encoder=h("encoder"),
    params={"k": "4", "overlap": "16", "match": "nearest", "similarity": repr(0.1 + 0.2)},
)


@pytest.fixture(scope="module")
def slice_u8(brain_slices) -> np.ndarray:
    """A brain slice as the whole numbers 0..255 an 8-bit PNG holds (float32)."""
    return np.rint(brain_slices[1] * 255).astype(np.float32)


# -- records --------------------------------------------------------------------------------------


def test_anchor_payload_round_trips():
    a = anchor()
    again = AnchorRecord.from_payload(a.payload())
    assert again == a and again.payload() == a.payload()
    body = decode(a.payload())
    assert body["format"] == ANCHOR_FORMAT and body["root"] == a.root and len(a.root) == 32
    assert a.to_json()["root"] == a.root.hex() and a.to_json()["shape"] == [64, 48]


def test_anchor_root_is_the_merkle_root_of_its_shard_leaves():
    a = anchor()
    leaves = [
        shard_leaf(i, bytes.fromhex(p), bytes.fromhex(f))
        for i, p, f in zip(a.shard_ids, a.shard_pixels, a.shard_fingerprints, strict=True)
    ]
    assert a.root == root_hash(leaves)
    swapped = anchor(shard_pixels=[a.shard_pixels[1], a.shard_pixels[0], *a.shard_pixels[2:]])
    assert swapped.root != a.root


def test_restoration_payload_round_trips():
    again = RestorationRecord.from_payload(RESTORATION.payload())
    assert again == RESTORATION and again.params["similarity"] == repr(0.30000000000000004)
    assert decode(RESTORATION.payload())["format"] == RESTORATION_FORMAT
    assert RESTORATION.to_json()["original"] == h("anchor-tx")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("shard_pixels", 1),  # a shard's pixel digest swapped for another's
        ("shard_fingerprints", 2),
        ("root", None),
        ("shard_ids", 3),
    ],
)
def test_a_payload_whose_root_does_not_match_its_leaves_is_refused(field, value):
    body = decode(anchor().payload())
    if field == "root":
        body["root"] = bytes(32)
    else:
        body[field][value] = hashlib.sha256(b"forged").digest()[: len(body[field][value])]
    with pytest.raises(RecordError, match="root does not match its shard leaves"):
        AnchorRecord.from_payload(encode(body))


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"\xff\x00", r"not a prosima\.image-anchor\.v2 record"),
        (encode({"format": RESTORATION_FORMAT}), r"not a prosima\.image-anchor\.v2 or .*v1 record"),
        (encode({"format": ANCHOR_FORMAT, "pixels": b"x"}), "malformed"),
    ],
)
def test_bad_anchor_payloads_are_refused_by_name(payload, message):
    with pytest.raises(RecordError, match=message):
        AnchorRecord.from_payload(payload)


def test_bad_restoration_payloads_are_refused():
    with pytest.raises(RecordError, match=r"not a prosima\.restoration\.v1 record"):
        RestorationRecord.from_payload(anchor().payload())
    body = decode(RESTORATION.payload())
    del body["model"]
    with pytest.raises(RecordError, match="malformed"):
        RestorationRecord.from_payload(encode(body))


def test_an_anchor_needs_k_of_each_digest():
    a = anchor()
    with pytest.raises(RecordError, match="k=4 shards"):
        anchor(shard_fingerprints=a.shard_fingerprints[:3])
    body = decode(a.payload())
    body["k"] = 5
    with pytest.raises(RecordError, match="k=5 shards"):
        AnchorRecord.from_payload(encode(body))


# -- canonical pixel digests ----------------------------------------------------------------------


def test_pixel_digest_is_the_same_for_png_and_npy_of_the_same_values(tmp_path, slice_u8):
    write_png(tmp_path / "a.png", slice_u8, data_range=(0, 255))
    with Image.open(tmp_path / "a.png") as im:
        im.save(tmp_path / "b.png", format="PNG", compress_level=9)
    write_npy(tmp_path / "c.npy", slice_u8)
    np.save(tmp_path / "d.npy", slice_u8.astype(np.float64))
    np.save(tmp_path / "e.npy", slice_u8.astype(np.int16))
    arrays = {n: read_image(tmp_path / n).array for n in ("a.png", "b.png", "c.npy", "d.npy", "e.npy")}
    assert read_image(tmp_path / "a.png").meta.original_dtype == "uint8"
    assert (tmp_path / "a.png").read_bytes() != (tmp_path / "b.png").read_bytes()
    digests = {n: pixel_digest(a) for n, a in arrays.items()}
    assert len(set(digests.values())) == 1, digests
    assert canonical_pixels(arrays["a.png"])[0] == "<i8"
    # one pixel changed by one level: another digest
    changed = arrays["c.npy"].copy()
    changed[100, 100] += 1
    assert pixel_digest(changed) != digests["a.png"]


def test_pixel_digest_of_fractional_values_depends_on_values_and_shape():
    a = np.linspace(0, 1, 64 * 48, dtype=np.float64).reshape(64, 48)
    assert canonical_pixels(a)[0] == "<f4"
    assert pixel_digest(a) == pixel_digest(a.astype(np.float32))
    assert pixel_digest(a) != pixel_digest(a.reshape(48, 64))
    assert pixel_digest(a) != pixel_digest(np.rint(a * 255))  # another value scale
    b = a.copy()
    b[5, 7] = np.nextafter(np.float32(b[5, 7]), np.float32(2))
    assert pixel_digest(b) != pixel_digest(a)
    with pytest.raises(ValueError):
        pixel_digest(np.full((4, 4), np.nan))


@pytest.mark.parametrize("pixel", [(0, 0), (255, 255), (63, 64), (64, 63), (127, 128), (200, 17)])
def test_one_changed_pixel_changes_exactly_the_shard_that_holds_it(slice_u8, pixel):
    grid, clean = shard_digests(slice_u8, 16)
    assert len(clean) == 16 and len(set(clean)) > 8  # blank corner shards hash alike
    changed = slice_u8.copy()
    changed[pixel] = 255 - changed[pixel]
    _, after = shard_digests(changed, 16)
    holder = grid.locate(pixel).index
    (r0, r1), (c0, c1) = grid.shards[holder].core
    assert r0 <= pixel[0] < r1 and c0 <= pixel[1] < c1
    assert differing_shards(after, clean) == [holder]
    assert differing_shards(clean, clean) == []


def test_shard_grid_of_a_256_image_is_4x4_of_64():
    grid, digests = shard_digests(np.zeros((256, 256)), 16)
    assert grid.grid == (4, 4) and {s.core for s in grid.shards} == {
        ((r, r + 64), (c, c + 64)) for r in range(0, 256, 64) for c in range(0, 256, 64)
    }
    assert len(set(digests)) == 1  # identical blank shards hash alike
    with pytest.raises(ValueError, match="differ in length"):
        differing_shards(digests, digests[:3])


# -- the fingerprint store ------------------------------------------------------------------------


def fingerprint(seed: int, shape=(64, 48), k: int = 4, dim: int = 8) -> Fingerprint:
    rng = np.random.default_rng(seed)
    codes = rng.integers(-127, 128, size=(k, dim)).astype(np.int8)
    return Fingerprint(codes, rng.uniform(0.001, 0.01, k).astype(np.float32), shape, k)


def same(a: Fingerprint, b: Fingerprint) -> bool:
    return (
        a.shape == b.shape
        and a.k == b.k
        and np.array_equal(a.codes, b.codes)
        and np.array_equal(a.scales, b.scales)
    )


def test_fingerprints_round_trip_and_are_named_by_their_hash(tmp_path):
    fp = fingerprint(0)
    assert same(fingerprint_from_bytes(fingerprint_bytes(fp)), fp)
    store = FingerprintStore(tmp_path)
    digest = store.put(fp)
    assert digest == fingerprint_digest(fp) == hashlib.sha256(fingerprint_bytes(fp)).digest()
    path = tmp_path / digest.hex()[:2] / f"{digest.hex()}.cbor"
    assert path.read_bytes() == fingerprint_bytes(fp) and digest in store
    assert store.put(fp) == digest  # idempotent
    assert same(store.get(digest), fp)
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".tmp-")]
    shards = shard_fingerprint_digests(fp)
    assert len(shards) == 4 and len(set(shards)) == 4
    other = Fingerprint(fp.codes.copy(), fp.scales.copy(), fp.shape, fp.k)
    other.codes[2, 0] ^= 1
    assert [a == b for a, b in zip(shard_fingerprint_digests(other), shards, strict=True)] == [
        True,
        True,
        False,
        True,
    ]


@pytest.mark.parametrize("forgery", ["other-valid", "flipped-byte", "truncated"])
def test_the_store_refuses_a_file_that_does_not_match_its_name(tmp_path, forgery):
    store = FingerprintStore(tmp_path)
    victim, other = store.put(fingerprint(1)), store.put(fingerprint(2))
    path = tmp_path / victim.hex()[:2] / f"{victim.hex()}.cbor"
    data = path.read_bytes()
    if forgery == "other-valid":
        path.write_bytes((tmp_path / other.hex()[:2] / f"{other.hex()}.cbor").read_bytes())
    elif forgery == "flipped-byte":
        path.write_bytes(data[:-1] + bytes([data[-1] ^ 0x80]))
    else:
        path.write_bytes(data[:-5])
    with pytest.raises(
        FingerprintStoreError, match=f"fingerprint {victim.hex()} .*forged or damaged, refused"
    ):
        store.get(victim)
    assert same(store.get(other), fingerprint(2))
    with pytest.raises(FingerprintStoreError, match="is not in the store"):
        store.get(bytes(32))


@pytest.mark.parametrize(
    "data",
    [b"\x00", encode({"format": "other"}), encode({"format": "prosima.fingerprint.v1", "k": 2})],
)
def test_malformed_fingerprint_bytes_are_refused(data):
    with pytest.raises(FingerprintStoreError):
        fingerprint_from_bytes(data)
