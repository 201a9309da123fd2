"""Model files: atomic saves, refusals by name (missing, oversize, not an archive, pickled code, a
tensor bomb, an unknown format version, another kind) and one weights digest that does not depend on
the file, the dict order or the stored dtype."""

from __future__ import annotations

import io
import os
import pickle
import zipfile

import pytest
import torch

from prosima.errors import InputError
from prosima.models import artifact as artifact_module
from prosima.models.artifact import (
    ARTIFACT_FORMAT,
    CHECKPOINT_V1_FORMAT,
    FORMAT_VERSION,
    Artifact,
    ArtifactError,
    load_artifact,
    save_artifact,
    state_digest,
)


def _state():
    return {
        "conv.weight": torch.arange(12, dtype=torch.float32).reshape(2, 1, 2, 3) / 7,
        "bn.num_batches_tracked": torch.tensor(5),
        "head.bias": torch.tensor([0.5, -1.25], dtype=torch.float16),
    }


def test_round_trip_keeps_kind_spec_state_and_meta(tmp_path):
    path = save_artifact(tmp_path / "sub" / "m.pt", "fusion", {"hidden": 4}, _state(), info={"seed": 2})
    got = load_artifact(path, "fusion")
    assert (got.kind, got.spec, got.meta, got.version) == ("fusion", {"hidden": 4}, {"info": {"seed": 2}}, 2)
    assert all(torch.equal(got.state[k], v) for k, v in _state().items())
    assert got.digest == state_digest(_state())
    assert os.listdir(tmp_path / "sub") == ["m.pt"]  # no temporary file left behind


def test_digest_is_the_earlier_rule_and_ignores_order_dtype_and_file():
    state = _state()
    # the value the restorers' checkpoint digest gave this state before model files had a format
    assert state_digest(state) == "56aae0c3078d4833207e30519f3bbe15cc05b51a7b8d4da84123b1cc98c513fa"
    reordered = dict(reversed(list(state.items())))
    assert state_digest(reordered) == state_digest(state)
    as_float32 = {k: v.float() for k, v in state.items()}
    assert state_digest(as_float32) == state_digest(state)
    changed = dict(state, **{"head.bias": torch.tensor([0.5, -1.0], dtype=torch.float16)})
    assert state_digest(changed) != state_digest(state)
    renamed = {("x." + k): v for k, v in state.items()}
    assert state_digest(renamed) != state_digest(state)


def test_digest_is_stable_across_save_and_load(tmp_path):
    first = save_artifact(tmp_path / "a.pt", "encoder", {}, _state())
    again = save_artifact(tmp_path / "b.pt", "encoder", {}, load_artifact(first).state)
    assert load_artifact(again).digest == load_artifact(first).digest == state_digest(_state())


def test_interrupted_save_leaves_the_old_file_and_no_partial_one(tmp_path, monkeypatch):
    path = save_artifact(tmp_path / "m.pt", "encoder", {"v": 1}, _state())
    before = path.read_bytes()

    def torn(obj, fh):
        fh.write(b"PK\x03\x04 half an archive")
        raise KeyboardInterrupt

    monkeypatch.setattr(artifact_module.torch, "save", torn)
    with pytest.raises(KeyboardInterrupt):
        save_artifact(path, "encoder", {"v": 2}, _state())
    with pytest.raises(KeyboardInterrupt):
        save_artifact(tmp_path / "new.pt", "encoder", {"v": 2}, _state())
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["m.pt"]
    monkeypatch.undo()
    assert load_artifact(path).spec == {"v": 1}


def test_non_plain_metadata_is_refused_before_writing(tmp_path):
    with pytest.raises(ArtifactError, match=r"meta\.when is a object"):
        save_artifact(tmp_path / "m.pt", "encoder", {}, _state(), when=object())
    with pytest.raises(ArtifactError, match="dict of named tensors"):
        save_artifact(tmp_path / "m.pt", "encoder", {}, {"w": [1.0]})
    assert not list(tmp_path.iterdir())


def test_missing_oversize_and_wrong_kind_are_refused_by_name(tmp_path):
    with pytest.raises(ArtifactError, match="no model file there"):
        load_artifact(tmp_path / "none.pt")
    path = save_artifact(tmp_path / "m.pt", "xmark-classifier", {}, _state())
    with pytest.raises(ArtifactError, match=r"above the 0\.0 MiB limit"):
        load_artifact(path, max_bytes=1000)
    with pytest.raises(ArtifactError, match="holds a xmark-classifier, not a fusion"):
        load_artifact(path, "fusion")
    with pytest.raises(ArtifactError, match="not one of encoder, generator"):
        load_artifact(path, ("encoder", "generator"))
    assert load_artifact(path, ("fusion", "xmark-classifier")).kind == "xmark-classifier"


def _torch_file(path, obj):
    torch.save(obj, path)
    return path


def test_unknown_format_versions_and_non_model_files_are_refused(tmp_path):
    newer = _torch_file(tmp_path / "v3.pt", {"format": "prosima.artifact.v3", "kind": "encoder"})
    with pytest.raises(ArtifactError, match=r"format version 3 .* not one this PROSIMA reads"):
        load_artifact(newer)
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(ArtifactError, match="not a readable model file"):
        load_artifact(tmp_path / "junk.pt")
    with pytest.raises(ArtifactError, match="holds a list"):
        load_artifact(_torch_file(tmp_path / "list.pt", [1, 2]))
    with pytest.raises(ArtifactError, match="no format version"):
        load_artifact(_torch_file(tmp_path / "bare.pt", {"state": {}}))
    with pytest.raises(ArtifactError, match=r"format 'prosima\.model-card\.v1'"):
        load_artifact(_torch_file(tmp_path / "card.pt", {"format": "prosima.model-card.v1"}))
    broken = {"format": ARTIFACT_FORMAT, "kind": "encoder", "spec": {}, "state": {"w": 1}, "meta": {}}
    with pytest.raises(ArtifactError, match="dict of named tensors"):
        load_artifact(_torch_file(tmp_path / "broken.pt", broken))
    assert issubclass(ArtifactError, InputError)


def test_earlier_checkpoint_format_reads_as_version_1(tmp_path):
    payload = {"format": CHECKPOINT_V1_FORMAT, "kind": "generator", "spec": {"a": 1}, "model_state": _state()}
    got = load_artifact(_torch_file(tmp_path / "v1.pt", payload | {"step": 7, "name": "g"}), "generator")
    assert (got.version, got.kind, got.spec, got.meta) == (1, "generator", {"a": 1}, {"step": 7, "name": "g"})
    assert got.digest == state_digest(_state()) and FORMAT_VERSION == 2


def test_unversioned_files_go_to_the_callers_reader(tmp_path):
    path = _torch_file(tmp_path / "old.pt", {"arch": "cnn", "weights": _state()})
    seen = []

    def legacy(payload):
        seen.append(sorted(payload))
        if payload["arch"] != "cnn":
            raise ArtifactError("not an old cnn")
        return Artifact("old-cnn", {}, payload["weights"], version=0)

    got = load_artifact(path, "old-cnn", legacy=legacy)
    assert seen == [["arch", "weights"]] and got.version == 0 and got.digest == state_digest(_state())
    other = _torch_file(tmp_path / "other.pt", {"arch": "mlp"})
    with pytest.raises(ArtifactError, match=r"other\.pt: not an old cnn"):
        load_artifact(other, legacy=legacy)


class _Touch:
    """Pickles as a call that would create ``marker`` when unpickled."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_pickle_bombs_are_refused_unread(tmp_path):
    marker = tmp_path / "ran"
    (tmp_path / "raw.pt").write_bytes(pickle.dumps({"format": ARTIFACT_FORMAT, "x": _Touch(marker)}))
    with pytest.raises(ArtifactError, match="not a torch archive"):
        load_artifact(tmp_path / "raw.pt")
    code = _torch_file(tmp_path / "code.pt", {"format": ARTIFACT_FORMAT, "x": _Touch(marker)})
    with pytest.raises(ArtifactError, match="pickled objects other than tensors"):
        load_artifact(code)
    assert not marker.exists()
    # a 1-element storage viewed as 10**12 elements: small on disk, a terabyte once copied
    bomb = {"format": ARTIFACT_FORMAT, "kind": "encoder", "spec": {}, "meta": {}}
    bomb["state"] = {"w": torch.zeros(1).expand(10**6, 10**6)}
    with pytest.raises(ArtifactError, match=r"tensor payload\.state\.w claims"):
        load_artifact(_torch_file(tmp_path / "bomb.pt", bomb))
    nested: list = []
    for _ in range(200):
        nested = [nested]
    deep = {"format": ARTIFACT_FORMAT, "kind": "encoder", "spec": {}, "state": {}, "meta": {"n": nested}}
    with pytest.raises(ArtifactError, match="nested more than 64 levels"):
        load_artifact(_torch_file(tmp_path / "deep.pt", deep))


def test_compressed_archives_are_refused(tmp_path):
    plain = save_artifact(tmp_path / "m.pt", "encoder", {}, _state())
    squeezed = io.BytesIO()
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(squeezed, "w", zipfile.ZIP_DEFLATED) as dst:
        for entry in src.infolist():
            dst.writestr(entry.filename, src.read(entry))
    (tmp_path / "zip.pt").write_bytes(squeezed.getvalue())
    with pytest.raises(ArtifactError, match="compressed entries"):
        load_artifact(tmp_path / "zip.pt")
