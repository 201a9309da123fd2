"""Lossless compressed transfer syntaxes that archives use decode in the default install, to exactly
the pixels of the uncompressed original: so ``prosima verify`` calls a lossless transcode of an
anchored image exact. Transcodes are made with dcmtk (``dcmcjpls``, ``dcmcjpeg``); those tests skip
without it."""

from __future__ import annotations

import json
import shutil
import subprocess

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.pixels import get_decoder
from pydicom.uid import UID, JPEGLosslessSV1, JPEGLSLossless
from typer.testing import CliRunner

from prosima.cli import app
from prosima.imaging.io import read_image
from prosima.provenance.pixels import pixel_digest

JPEG_LOSSLESS_P14 = UID("1.2.840.10008.1.2.4.57")
# dcmtk tool and options -> the transfer syntax it writes
TRANSCODES = {
    "jpeg-ls": (["dcmcjpls"], JPEGLSLossless),
    "jpeg-lossless-sv1": (["dcmcjpeg"], JPEGLosslessSV1),
    "jpeg-lossless-p14": (["dcmcjpeg", "+el"], JPEG_LOSSLESS_P14),
}


@pytest.mark.parametrize("syntax", [JPEGLSLossless, JPEGLosslessSV1, JPEG_LOSSLESS_P14])
def test_default_install_decodes_the_lossless_jpeg_syntaxes(syntax):
    decoder = get_decoder(syntax)
    assert decoder.is_available, f"{syntax.name}: {decoder.missing_dependencies}"


def test_bundled_jpeg_ls_sample_has_the_uncompressed_pixels():
    plain = get_testdata_file("MR_small.dcm", download=False)
    packed = get_testdata_file("MR_small_jpeg_ls_lossless.dcm", download=False)
    if plain is None or packed is None:
        pytest.skip("this pydicom lacks its bundled MR_small samples")
    assert pydicom.dcmread(packed).file_meta.TransferSyntaxUID == JPEGLSLossless
    assert pixel_digest(read_image(packed).array) == pixel_digest(read_image(plain).array)


def transcode(kind: str, source, out):
    """``source`` losslessly recompressed by dcmtk into ``out``; skips when the tool is missing."""
    command, syntax = TRANSCODES[kind]
    if shutil.which(command[0]) is None:
        pytest.skip(f"{command[0]} not installed (Debian package dcmtk)")
    subprocess.run([*command, str(source), str(out)], check=True, capture_output=True, timeout=60)
    assert pydicom.dcmread(out).file_meta.TransferSyntaxUID == syntax
    return out


@pytest.mark.parametrize("kind", sorted(TRANSCODES))
def test_dcmtk_lossless_transcode_gives_the_same_pixel_digest(kind, write_ct, tmp_path):
    source = write_ct()  # signed values, a rescale and padding
    packed = transcode(kind, source, tmp_path / f"{kind}.dcm")
    original, decoded = read_image(source), read_image(packed)
    assert pixel_digest(decoded.array) == pixel_digest(original.array)
    assert decoded.meta.extra["transfer_syntax"] == TRANSCODES[kind][1]


def test_verify_calls_lossless_transcodes_of_an_anchored_image_exact(write_ct, tmp_path):
    runner = CliRunner()

    def run(*args, code=0):
        res = runner.invoke(app, [str(a) for a in args])
        assert res.exit_code == code, res.output
        return res

    source = write_ct(size=128)
    transcodes = [transcode(kind, source, tmp_path / f"{kind}.dcm") for kind in sorted(TRANSCODES)]
    ledger = tmp_path / "ledger"
    run("ledger", "init", ledger, "--nodes", 4)
    run("anchor", source, "--ledger", ledger, "--consensus", "direct", "--json", tmp_path / "a.json")
    anchored = json.loads((tmp_path / "a.json").read_text())
    for packed in transcodes:
        res = run("verify", packed, "--ledger", ledger, "--json", tmp_path / "v.json")
        assert "VERIFIED EXACT: an anchored original" in res.stdout
        verdict = json.loads((tmp_path / "v.json").read_text())
        assert verdict["ok"] and verdict["record"]["tx"] == anchored[0]["tx"]
