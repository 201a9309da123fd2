import numpy as np
import pytest
from PIL import Image

from prosima.imaging.datasets import (
    ImageFolder,
    PairedFolder,
    VolumeSlices,
    brats_slices,
    crop_or_pad,
    embedded_default_slices,
    find_brats_subjects,
    normalise_volume,
    split_subjects,
)
from prosima.imaging.validation import ImageError


def _phantom(shape=(40, 48, 30), seed=0):
    rng = np.random.default_rng(seed)
    vol = np.zeros(shape, np.float32)
    vol[8:32, 10:40, 5:25] = rng.uniform(100, 1000, (24, 30, 20))
    return vol


def test_normalise_volume_records_its_rule():
    vol = _phantom()
    vol[10, 10, 10] = 1e6  # an outlier must not squash the rest
    out, rec = normalise_volume(vol, (1.0, 99.0))
    assert rec["rule"] == "percentile_of_nonzero" and rec["percentiles"] == [1.0, 99.0]
    assert out.min() == 0.0 and out.max() == 1.0 and out.dtype == np.float32
    assert (out[vol == 0] == 0).all()
    fg = out[vol != 0]
    assert 0.3 < fg.mean() < 0.7
    assert rec["high"] < 1e6
    with pytest.raises(ImageError, match="entirely zero"):
        normalise_volume(np.zeros((4, 4, 4)))
    with pytest.raises(ImageError, match="percentiles"):
        normalise_volume(vol, (50, 10))


@pytest.mark.parametrize(
    ("shape", "size"), [((240, 240), 256), ((300, 257), 256), ((7, 9), 8), ((197, 233), 256)]
)
def test_crop_or_pad(shape, size):
    x = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    y = crop_or_pad(x, (size, size))
    assert y.shape == (size, size)
    if shape[0] <= size and shape[1] <= size:
        assert np.array_equal(np.sort(y[y != 0]), np.sort(x[x != 0]))  # padding keeps every pixel


def test_volume_slices_threshold_and_subsampling():
    vols = [("s1", "t1n", _phantom()), ("s2", "t1n", _phantom(seed=1))]
    ds = VolumeSlices(vols, min_brain_fraction=0.2, size=64)
    assert len(ds) == 40  # the 20 slices with brain in each volume
    item = ds[0]
    assert item.image.shape == (64, 64) and item.subject == "s1" and 5 <= item.z < 25
    assert item.brain_fraction == pytest.approx(24 * 30 / (40 * 48))
    assert ds.subjects == ["s1", "s2"]
    few = VolumeSlices(vols, min_brain_fraction=0.2, size=64, max_slices_per_volume=3)
    assert [it.z for it in few][:3] == [5, 15, 24]
    with pytest.raises(ImageError, match="no axial slice"):
        VolumeSlices(vols, min_brain_fraction=0.9)


def test_split_subjects_is_by_subject_and_seeded():
    subjects = [f"s{i}" for i in range(10)]
    a = split_subjects(subjects, seed=3)
    assert a == split_subjects(list(reversed(subjects)), seed=3)
    parts = [set(a[k]) for k in ("train", "val", "test")]
    assert set().union(*parts) == set(subjects) and sum(map(len, parts)) == 10
    assert [len(p) for p in parts] == [6, 2, 2]
    assert a != split_subjects(subjects, seed=4)
    with pytest.raises(ImageError, match="at least 3"):
        split_subjects(["a", "b"])


def test_embedded_default_needs_no_shared_data():
    ds = embedded_default_slices(max_slices_per_volume=5)
    assert len(ds) == 5
    item = ds[2]
    assert item.image.shape == (256, 256)
    assert item.image.min() >= 0.0 and item.image.max() <= 1.0 and item.image.max() > 0.5
    assert item.brain_fraction > 0.05


def test_brats_slices_on_real_data(shared_data):
    root = shared_data / "brain_mri"
    subjects = find_brats_subjects(root)
    assert len(subjects) == 3
    ds = brats_slices(root, subjects[:1], ("t1n", "t2f"))
    per_contrast = len(ds) // 2
    assert 90 <= per_contrast <= 140
    item = ds[len(ds) // 2]
    assert item.image.shape == (256, 256) and item.image.dtype == np.float32
    assert item.image.min() >= 0.0 and item.image.max() <= 1.0
    assert item.normalisation["low"] < item.normalisation["high"]
    with pytest.raises(ImageError, match="unknown BraTS contrasts"):
        brats_slices(root, subjects[:1], ("t3",))


def _write_png(path, value, size=(16, 16), mode="L"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full(size, value, np.uint8), mode=mode).save(path)


def test_image_folder_and_paired_folder(tmp_path):
    for label, n in (("normal", 3), ("pneumonia", 2)):
        for i in range(n):
            _write_png(tmp_path / "cxr" / label / f"{i}.png", 51 * (i + 1))
    ds = ImageFolder(tmp_path / "cxr")
    assert ds.classes == ["normal", "pneumonia"] and len(ds) == 5
    img, label = ds[4]
    assert label == 1 and img.max() == pytest.approx(102 / 255)
    for side in ("MRI", "CT"):
        for name in ("a.png", "b.png"):
            _write_png(tmp_path / "pairs" / side / name, 10)
    _write_png(tmp_path / "pairs" / "CT" / "c.png", 10)
    pairs = PairedFolder(tmp_path / "pairs", "MRI", "CT")
    assert len(pairs) == 2 and pairs.unmatched == ["c.png"]
    a, b = pairs[0]
    assert a.shape == b.shape == (16, 16)


def test_empty_folders_are_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImageError, match="no images found"):
        ImageFolder(tmp_path / "empty")
    with pytest.raises(ImageError, match="no BraTS subject"):
        find_brats_subjects(tmp_path / "empty")
    (tmp_path / "empty" / "A").mkdir()
    (tmp_path / "empty" / "B").mkdir()
    with pytest.raises(ImageError, match="no file names shared"):
        PairedFolder(tmp_path / "empty", "A", "B")


def test_real_chest_xrays_and_fusion_pairs(shared_data):
    cxr = ImageFolder(shared_data / "chest_xray" / "covid19_xray_256")
    assert cxr.classes == ["Covid-19", "No_findings", "Pneumonia"] and len(cxr) == 1124
    img, label = cxr[0]
    assert img.shape == (256, 256) and label == 0 and img.min() >= 0.0 and img.max() <= 1.0
    pet = PairedFolder(shared_data / "fusion" / "harvard_aanlib" / "PET-MRI", "MRI", "PET")
    assert len(pet) == 269
    mri, petimg = pet[0]
    assert mri.shape[:2] == petimg.shape[:2] == (256, 256) and petimg.shape[-1] == 3
