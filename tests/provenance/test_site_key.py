"""The site key and the keyed instance link: one UID under one key always links the same, under
another key differently; the key file is made once, mode 0600, and refused when others may read it
or when damaged; records refuse identifiers in clear; v1 records are read without theirs."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

from prosima.imaging.loaded import loaded_image
from prosima.ledger.log.encoding import decode, encode
from prosima.provenance.records import (
    ANCHOR_FORMAT,
    ANCHOR_FORMAT_V1,
    AnchorRecord,
    RecordError,
    RestorationRecord,
)
from prosima.provenance.site_key import SITE_KEY_FILE, SiteKey, SiteKeyError, instance_of

KEY = SiteKey(bytes(range(32)))
OTHER = SiteKey(bytes(range(1, 33)))
UID = "1.2.826.0.1.3680043.8.498.12345"


def h(tag: str) -> str:
    return hashlib.sha256(tag.encode()).hexdigest()


def anchor(**changes) -> AnchorRecord:
    fields = {
        "pixels": h("pixels"),
        "shape": (8, 8),
        "k": 1,
        "shard_ids": ["00" * 16],
        "shard_pixels": [h("p0")],
        "shard_fingerprints": [h("f0")],
        "fingerprint": h("fingerprint"),
        "encoder": h("encoder"),
        "source": {"format": "dicom", "modality": "CT", "slice": "3", "axis": "0", "range": "0.0,1.0"},
        "link": KEY.link({"sop": UID, "series": "1.2.3", "study": "1.2"}),
    }
    return AnchorRecord(**(fields | changes))


def test_one_uid_under_one_key_links_the_same_and_under_another_key_differently():
    assert KEY.digest("sop", UID) == SiteKey(bytes(range(32))).digest("sop", UID)
    assert KEY.digest("sop", UID) == KEY.digest("sop", f" {UID}\0")  # DICOM padding is not identity
    assert KEY.digest("sop", UID) != OTHER.digest("sop", UID)
    assert KEY.digest("sop", UID) != KEY.digest("series", UID)  # one digest per kind of identifier
    assert KEY.id != OTHER.id and len(KEY.id) == 16
    link = KEY.link({"sop": UID, "file": "x.dcm"})
    assert set(link) == {"key", "sop", "file"} and link["key"] == KEY.id
    assert UID not in repr(link) and bytes(range(32)).hex() not in repr(KEY)


def test_the_key_file_is_made_once_with_mode_0600_and_read_back(tmp_path):
    assert SiteKey.find(tmp_path) is None
    made = SiteKey.ensure(tmp_path)
    path = tmp_path / SITE_KEY_FILE
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert SiteKey.ensure(tmp_path) == made == SiteKey.load(path) == SiteKey.find(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == [SITE_KEY_FILE]  # no temporary file left


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660])
def test_a_key_file_others_may_read_is_refused(tmp_path, mode):
    SiteKey.ensure(tmp_path)
    os.chmod(tmp_path / SITE_KEY_FILE, mode)
    with pytest.raises(SiteKeyError, match=rf"has mode {mode:04o}.*chmod 600"):
        SiteKey.find(tmp_path)
    with pytest.raises(SiteKeyError, match="chmod 600"):
        SiteKey.ensure(tmp_path)  # never replaced either


@pytest.mark.parametrize("content", [b"", b"not hex\n", b"ab" * 31, b"\xff" * 64])
def test_a_damaged_key_file_is_refused_by_name(tmp_path, content):
    path = tmp_path / SITE_KEY_FILE
    path.write_bytes(content)
    os.chmod(path, 0o600)
    with pytest.raises(SiteKeyError, match=f"site key {path}"):
        SiteKey.load(path)


def test_a_missing_or_odd_key_file_is_refused(tmp_path):
    with pytest.raises(SiteKeyError, match="does not exist"):
        SiteKey.load(tmp_path / SITE_KEY_FILE)
    (tmp_path / SITE_KEY_FILE).mkdir(mode=0o700)
    with pytest.raises(SiteKeyError, match="not a regular file"):
        SiteKey.find(tmp_path)


def test_the_instance_of_a_dicom_series_slice_is_its_uids_and_of_other_files_their_name():
    arr = np.zeros((2, 4, 4), np.float32)
    ids = {"StudyInstanceUID": "1.2", "SeriesInstanceUID": "1.2.3", "PatientID": "P-77"}
    series = loaded_image(
        Path("Doe_Jane"), "dicom", arr, original_dtype="int16", identifiers=ids,
        extra={"sop_instance_uids": ["1.2.3.1", "1.2.3.2"]},
    )  # fmt: skip
    assert instance_of(series, 1) == {"study": "1.2", "series": "1.2.3", "sop": "1.2.3.2"}
    nifti = loaded_image(Path("Doe_Jane.nii.gz"), "nifti", arr, original_dtype="float32")
    assert instance_of(nifti, 1) == {"file": "Doe_Jane.nii.gz"}
    bare = loaded_image(Path("Doe_Jane"), "dicom", arr, original_dtype="int16")  # no UIDs at all
    assert instance_of(bare) == {"file": "Doe_Jane"}


def test_an_anchor_record_refuses_identifiers_in_clear_and_round_trips_its_link():
    a = anchor()
    assert AnchorRecord.from_payload(a.payload()) == a and decode(a.payload())["format"] == ANCHOR_FORMAT
    assert a.to_json()["link"] == a.link and a.to_json()["version"] == 2
    for source in ({"file": "Doe_Jane.png"}, {"PatientID": "P-77"}, {"StudyInstanceUID": UID}):
        with pytest.raises(RecordError, match="identifiers and file names go on the ledger only as keyed"):
            anchor(source=source)
    with pytest.raises(RecordError, match="link field 'sop'"):
        anchor(link={"key": KEY.id, "sop": UID})  # a UID in clear is not a digest
    with pytest.raises(RecordError, match="names the site key"):
        anchor(link={"sop": KEY.digest("sop", UID)})
    body = decode(a.payload())
    body["source"]["file"] = "Doe_Jane.png"
    with pytest.raises(RecordError, match="keyed links"):
        AnchorRecord.from_payload(encode(body))


def test_a_v1_record_is_read_without_its_clear_identifiers_and_never_written():
    body = decode(anchor().payload())
    body["format"] = ANCHOR_FORMAT_V1
    del body["link"]
    body["source"] |= {"file": "Doe_Jane", "PatientID": "P-77", "SOPInstanceUID": UID}
    old = AnchorRecord.from_payload(encode(body))
    assert old.version == 1 and old.link == {} and old.pixels == h("pixels")
    assert old.source == anchor().source  # what identified the patient is gone
    assert "P-77" not in repr(old.to_json()) and UID not in repr(old.to_json())
    with pytest.raises(RecordError, match="v1 anchor record is read, never written"):
        old.payload()
    with pytest.raises(RecordError, match=r"not a prosima\.image-anchor\.v2 or prosima\.image-anchor\.v1"):
        AnchorRecord.from_payload(encode(body | {"format": "prosima.image-anchor.v9"}))


def test_a_restoration_never_names_files_and_older_ones_are_read_without_them():
    fields = {
        "input_pixels": h("in"),
        "output_pixels": h("out"),
        "output_shard_pixels": [h("o0")],
        "original": h("tx"),
        "model": h("w"),
        "model_name": "prosima-full",
        "encoder": h("encoder"),
    }
    with pytest.raises(RecordError, match="must not name files"):
        RestorationRecord(**fields, params={"input_file": "Doe_Jane.png"})
    body = decode(RestorationRecord(**fields, params={"k": "1"}).payload())
    body["params"] |= {"input_file": "Doe_Jane.png", "output_file": "Doe_Jane_r.png"}
    old = RestorationRecord.from_payload(encode(body))
    assert old.params == {"k": "1"}
