"""Key files round-trip with a stable digest; a malformed key gets an error naming the field."""

from __future__ import annotations

import json

import pytest

from prosima.models.model_card import sha256_file
from prosima.watermark.key import WatermarkKey, WatermarkKeyFileError, load_key


def _body(tmp_path):
    (tmp_path / "queries.npz").write_bytes(b"q")
    return {
        "format": "prosima.watermark-key.v1",
        "method": "badnets",
        "marker": {"method": "badnets", "patch_fraction": 0.1, "margin": 1},
        "target": 1,
        "classes": ["a", "b"],
        "marked_fraction": 0.25,
        "marked": [{"id": "b/1.png", "sha256": "ab" * 32}],
        "files": {"queries": {"path": "queries.npz", "sha256": sha256_file(tmp_path / "queries.npz")}},
        "weights": {},
        "seeds": {"mark": 0},
        "dataset": {"name": "toy"},
        "verify": {"tau": 0.05, "alpha": 0.01},
    }


def test_round_trip_and_digest(tmp_path):
    key = WatermarkKey(**_body(tmp_path))
    path = key.save(tmp_path / "key.json")
    again = load_key(path)
    assert again == key and again.digest() == key.digest() and len(key.digest()) == 64
    again.check_files(path)
    assert WatermarkKey(**(_body(tmp_path) | {"target": 0})).digest() != key.digest()
    (tmp_path / "queries.npz").write_bytes(b"changed")
    with pytest.raises(WatermarkKeyFileError, match=r"files\.queries.*does not match"):
        again.check_files(path)
    (tmp_path / "queries.npz").unlink()
    with pytest.raises(WatermarkKeyFileError, match=r"files\.queries.*missing"):
        again.check_files(path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format": "other"}, "'format'"),
        ({"method": "magic"}, "'method'"),
        ({"target": "1"}, "'target' must be int"),
        ({"target": True}, "'target' must be int"),
        ({"target": 5}, "'target' is 5"),
        ({"classes": []}, "'classes'"),
        ({"marked_fraction": 2.0}, "'marked_fraction'"),
        ({"marked": [{"id": "x", "sha256": "zz"}]}, r"'marked\[0\]'"),
        ({"marked": "all"}, "'marked' must be list"),
        ({"files": {"queries": {"path": 3}}}, r"'files\.queries'"),
        ({"weights": {"generator": "short"}}, r"'weights\.generator'"),
        ({"seeds": {"mark": 0.5}}, r"'seeds\.mark'"),
        ({"verify": {"tau": "big"}}, r"'verify\.tau'"),
        ({"method": "xmark", "marker": {"eps": 0.03}}, r"'marker\.mask_fraction'"),
        ({"method": "xmark", "marker": {"eps": 0.03, "mask_fraction": 0.2}}, "no 'generator' entry"),
        ({"bogus": 1}, "unknown key field 'bogus'"),
    ],
)
def test_malformed_fields_are_named(tmp_path, change, message):
    path = tmp_path / "key.json"
    path.write_text(json.dumps(_body(tmp_path) | change))
    with pytest.raises(WatermarkKeyFileError, match=message):
        load_key(path)


def test_missing_field_and_bad_json(tmp_path):
    body = _body(tmp_path)
    del body["seeds"]
    (tmp_path / "a.json").write_text(json.dumps(body))
    with pytest.raises(WatermarkKeyFileError, match="'seeds' is missing"):
        load_key(tmp_path / "a.json")
    (tmp_path / "b.json").write_text("{not json")
    with pytest.raises(WatermarkKeyFileError, match="not JSON"):
        load_key(tmp_path / "b.json")
    (tmp_path / "c.json").write_text("[]")
    with pytest.raises(WatermarkKeyFileError, match="JSON object"):
        load_key(tmp_path / "c.json")
    with pytest.raises(WatermarkKeyFileError, match="no key file"):
        load_key(tmp_path / "none.json")
