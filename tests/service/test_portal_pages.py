"""The verification portal's pages through the running application (FastAPI's TestClient): the
verdicts are the JSON API's in plain words, with the heatmap, the changed shards where they are,
the record chain, the proof and the quorum; the proof download is what ``prosima ledger
check-proof`` accepts; the ledger browser decodes records and gives times in ISO 8601; every value
is escaped, every answer carries the Content-Security-Policy, and no page holds a token."""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from prosima.cli import app as cli
from prosima.imaging.io import read_image, write_nifti
from prosima.imaging.shards import plan_shards
from prosima.service.portal.headers import CONTENT_SECURITY_POLICY
from prosima.service.tokens import token_hash

ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00")


class Page(HTMLParser):
    """The parts of a page the tests read: text by element, images, links and form fields."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.h1: list[str] = []
        self.images: list[dict[str, str | None]] = []
        self.links: list[str] = []
        self.scripts: list[dict[str, str | None]] = []
        self.labels_for: set[str] = set()
        self.inputs: list[dict[str, str | None]] = []
        self._in_h1 = False
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "h1":
            self._in_h1 = True
            self.h1.append("")
        elif tag == "img":
            self.images.append(found)
        elif tag == "a" and found.get("href"):
            self.links.append(str(found["href"]))
        elif tag == "script":
            self.scripts.append(found)
        elif tag == "label" and found.get("for"):
            self.labels_for.add(str(found["for"]))
        elif tag in ("input", "select"):
            self.inputs.append(found)

    def handle_endtag(self, tag: str) -> None:
        if tag == "h1":
            self._in_h1 = False

    def handle_data(self, data: str) -> None:
        if self._in_h1:
            self.h1[-1] += data

    @property
    def title(self) -> str:
        return " ".join(" ".join(self.h1).split())


def _verdict_page(served, path: Path, name: str | None = None):
    files = {"file": (name or path.name, path.read_bytes(), "image/png")}
    res = served.client.post("/portal/verify", files=files)
    return res, Page(res.text)


def _api_verdict(served, path: Path) -> dict:
    return served.client.post("/v1/verify", files=served.upload(path)).json()


def _key_material(ledger: Path) -> list[str]:
    """The ledger's secrets as text could carry them: each node's private key (raw, hex; its PEM
    body) and the site key."""
    from cryptography.hazmat.primitives import serialization

    found = [(ledger / "site.key").read_text().strip()]
    for pem in sorted((ledger / "keys").glob("*.key")):
        key = serialization.load_pem_private_key(pem.read_bytes(), password=None)
        raw = key.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
        found += [raw.hex(), pem.read_text().splitlines()[1]]
    return found


def _shards_touching(shape: tuple[int, int], k: int, rows: range, columns: range) -> list[int]:
    """The shards whose core box meets the given rows and columns."""
    grid = plan_shards(shape, k)
    hit = []
    for shard in grid.shards:
        (r0, r1), (c0, c1) = shard.core
        if r0 < rows.stop and rows.start < r1 and c0 < columns.stop and columns.start < c1:
            hit.append(shard.index)
    return hit


def test_the_verify_page_is_a_plain_form_with_labels(served):
    res = served.client.get("/portal")
    assert res.status_code == 200 and res.headers["content-type"].startswith("text/html")
    page = Page(res.text)
    assert page.title == "Verify an image"
    assert (
        '<form class="upload" method="post" action="/portal/verify" enctype="multipart/form-data">'
        in res.text
    )
    fields = [i for i in page.inputs if i.get("type") != "hidden"]
    assert all(f.get("id") in page.labels_for for f in fields), fields
    assert [s["src"] for s in page.scripts] == ["/portal/static/portal.js"]  # the service's own only
    assert 'name="instance"' not in res.text  # no archive connected: no instance field
    assert served.client.get("/", follow_redirects=False).headers["location"] == "/portal"


def test_an_anchored_slice_is_an_exact_original_with_its_proof_and_quorum(served):
    api = _api_verdict(served, served.originals[0])
    res, page = _verdict_page(served, served.originals[0])
    assert res.status_code == 200
    assert page.title == "Verified Exact original"
    tx = api["record"]["tx"]
    assert tx[:16] in res.text and f"/portal/records/{tx}" in page.links
    assert "Checked: the inclusion proof holds." in res.text
    block = api["block"]
    assert (
        f"Checked: {block['signatures']} of {block['nodes']} nodes signed block {block['height']} "
        f"(a quorum needs {block['threshold']})." in res.text
    )
    for signer in block["quorum_certificate"]:
        assert signer["signature"] in res.text
    assert "Acquisition" in res.text or "acquisition" in res.text
    assert f"/portal/proofs/{tx}" in page.links
    (heatmap,) = [i for i in page.images if str(i.get("src", "")).startswith("data:image/png;base64,")]
    assert base64.b64decode(str(heatmap["src"]).split(",", 1)[1]).startswith(b"\x89PNG")
    assert "no shard shaded" in str(heatmap["alt"])
    assert "of this very instance" in res.text


def test_a_tampered_copy_is_changed_with_its_shards_named_where_they_are(served):
    api = _api_verdict(served, served.tampered)
    original = read_image(served.originals[0]).array
    changed = read_image(served.tampered).array != original
    rows, columns = (range(int(a.min()), int(a.max()) + 1) for a in changed.nonzero())
    expected = _shards_touching(original.shape, len(api["shard_cosines"]), rows, columns)
    assert api["differing_shards"] == expected  # the changed block's shards, as the API says
    res, page = _verdict_page(served, served.tampered)
    assert res.status_code == 200
    *listed, last = (str(i) for i in expected)
    assert page.title == f"Not verified Changed: shards {', '.join(listed)} and {last} differ"
    assert f"shares {api['nearest']['shared']} shards exactly with" in res.text
    grid = plan_shards(original.shape, len(api["shard_cosines"]))
    for i in expected:
        (r0, r1), (c0, c1) = grid.shards[i].core
        assert f"<td>{i}</td><td>{r0} to {r1 - 1}</td><td>{c0} to {c1 - 1}</td>" in res.text
    (heatmap,) = [i for i in page.images if str(i.get("src", "")).startswith("data:image/png")]
    assert f"shards {', '.join(listed)} and {last} shaded red" in str(heatmap["alt"])
    assert "There is no inclusion proof of these pixels" in res.text
    assert f"/portal/records/{api['nearest']['tx']}" in page.links


def test_an_image_never_anchored_is_not_on_this_ledger(served):
    api = _api_verdict(served, served.unknown)
    res, page = _verdict_page(served, served.unknown)
    assert res.status_code == 200 and api["ok"] is False
    assert page.title.startswith("Not verified ")
    assert "Exact" not in page.title and "Faithful" not in page.title


def test_a_volume_is_judged_slice_by_slice(served, tmp_path):
    planes = [read_image(p).array for p in served.originals]
    volume = tmp_path / "volume.nii.gz"
    write_nifti(volume, np.stack(planes, axis=2))
    job = served.client.post("/v1/verify", files=served.upload(volume)).json()
    slices = served.job_answer(job["href"])["result"]["slices"]
    res = served.client.post("/portal/verify", files=served.upload(volume))
    assert res.status_code == 200
    verified = sum(s["ok"] for s in slices)
    title = Page(res.text).title
    assert title.endswith(
        f"All {len(slices)} slices verified"
        if verified == len(slices)
        else f"{verified} of {len(slices)} slices verified"
    )
    table = res.text.split("<caption>Every slice's verdict</caption>", 1)[1].split("</table>", 1)[0]
    assert table.count("<tr>") == len(slices) + 1
    for s in slices:
        assert s["status"] in table


def test_the_proof_download_is_what_check_proof_accepts(served, tmp_path):
    tx = _api_verdict(served, served.originals[1])["record"]["tx"]
    res = served.client.get(f"/portal/proofs/{tx}")
    assert res.status_code == 200 and res.headers["content-type"] == "application/json"
    assert res.headers["content-disposition"] == f'attachment; filename="proof-{tx[:16]}.json"'
    assert res.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    saved = tmp_path / "proof.json"
    saved.write_bytes(res.content)
    registry = served.ledger / "registry.cbor"
    checked = CliRunner().invoke(cli, ["ledger", "check-proof", str(saved), "--registry", str(registry)])
    assert checked.exit_code == 0, checked.output
    assert "ok: prosima.ledger.inclusion-proof verifies; keys pinned" in checked.output
    assert served.client.get(f"/portal/proofs/{'0' * 64}").status_code == 404


def test_the_ledger_browser_decodes_records_with_iso_times(served):
    listing = served.client.get("/portal/ledger")
    assert listing.status_code == 200
    tip = served.client.get("/v1/blocks").json()["header"]["height"]
    page = Page(listing.text)
    for height in range(tip + 1):
        assert f"/portal/blocks/{height}" in page.links
    assert ISO_UTC.search(listing.text)
    tx = _api_verdict(served, served.originals[0])["record"]["tx"]
    record_json = served.client.get(f"/v1/records/{tx}").json()
    height = record_json["height"]
    block = served.client.get(f"/portal/blocks/{height}")
    assert block.status_code == 200 and f"/portal/records/{tx}" in Page(block.text).links
    record = served.client.get(f"/portal/records/{tx}")
    assert record.status_code == 200
    decoded = record_json["transaction"]["payload_decoded"]
    for field in ("fingerprint", "encoder", "pixels"):
        assert decoded[field] in record.text and decoded[field] in block.text
    assert record_json["transaction"]["payload"] not in record.text  # never the CBOR bytes
    assert record_json["transaction"]["payload"][:64] not in block.text
    assert record_json["transaction"]["time_iso"] in record.text
    assert "Checked: the inclusion proof holds." in record.text
    assert served.client.get("/portal/ledger?page=999").status_code == 404
    assert served.client.get(f"/portal/blocks/{tip + 1}").status_code == 404


def test_search_by_record_id_digest_and_uid(served):
    api = _api_verdict(served, served.originals[0])
    tx, digest = api["record"]["tx"], api["pixels"]
    jump = served.client.get("/portal/search", params={"q": tx}, follow_redirects=False)
    assert jump.status_code == 303 and jump.headers["location"] == f"/portal/records/{tx}"
    by_record = served.client.get("/portal/search", params={"q": tx, "by": "record"}, follow_redirects=False)
    assert by_record.headers["location"] == f"/portal/records/{tx}"
    found = served.client.get("/portal/search", params={"q": digest})  # not a record id: a digest
    assert found.status_code == 200 and f"/portal/records/{tx}" in Page(found.text).links
    assert "1 record found" in found.text
    none = served.client.post("/portal/search", data={"q": "1.2.840.99999.1"})  # the form posts
    assert none.status_code == 200 and "No record found." in none.text
    assert "SOP Instance UID" in none.text
    missing = served.client.get("/portal/search", params={"q": "0" * 64, "by": "record"})
    form = served.client.get("/portal/ledger").text
    assert '<form class="search" method="post" action="/portal/search" role="search">' in form
    assert missing.status_code == 404 and "no record" in missing.text


def test_the_audit_report_verifies_the_chain(served):
    res = served.client.get("/portal/audit")
    assert res.status_code == 200
    assert Page(res.text).title == "Audit report of this ledger"
    head = served.client.get("/v1/tree-head").json()
    assert "The chain verifies" in res.text and head["root_hash"] in res.text
    versions = served.client.get("/v1/models").json()["versions"]
    assert versions and all(v["tx"][:16] in res.text for v in versions)
    tx = _api_verdict(served, served.originals[0])["record"]["tx"]
    assert f"/portal/records/{tx}" in Page(res.text).links
    assert "@media print" in served.client.get("/portal/static/portal.css").text


def test_every_value_is_escaped(served):
    hostile = "<img src=x onerror=alert(1)>.png"
    res, page = _verdict_page(served, served.originals[0], name=hostile)
    assert res.status_code == 200
    assert "<img src=x" not in res.text and "&lt;img src=x onerror=alert(1)&gt;.png" in res.text
    assert all(not str(i.get("src", "")).startswith("x") for i in page.images)
    query = "<script>alert(2)</script>"
    refused = served.client.get("/portal/search", params={"q": query})
    assert refused.status_code == 400 and "<script>alert(2)" not in refused.text
    assert "&lt;script&gt;alert(2)" in refused.text


def test_bad_input_is_a_page_naming_the_problem(served):
    broken = served.client.post("/portal/verify", files={"file": ("scan.png", b"not an image", "image/png")})
    assert broken.status_code == 422 and broken.headers["content-type"].startswith("text/html")
    assert "scan.png" in broken.text and "not a readable PNG image" in broken.text
    assert "Traceback" not in broken.text and "prosima-upload-" not in broken.text
    empty = served.client.post("/portal/verify")
    assert empty.status_code == 400 and "Choose an image file to verify" in empty.text
    no_archive = served.client.post("/portal/verify/instance", data={"instance": "1.2.3"})
    assert no_archive.status_code == 400 and "not connected to an archive" in no_archive.text


def test_every_answer_has_the_security_headers_and_no_token(served):
    tx = _api_verdict(served, served.originals[0])["record"]["tx"]
    answers = [
        served.client.get("/portal"),
        _verdict_page(served, served.originals[0])[0],
        _verdict_page(served, served.tampered)[0],
        served.client.get("/portal/ledger"),
        served.client.get("/portal/blocks/0"),
        served.client.get(f"/portal/records/{tx}"),
        served.client.post("/portal/search", data={"q": "1.2.3.4"}),
        served.client.get("/portal/audit"),
        served.client.get(f"/portal/proofs/{tx}"),
        served.client.get("/portal/static/portal.css"),
        served.client.get("/portal/static/portal.js"),
        served.client.post("/portal/verify", files={"file": ("x.png", b"x", "image/png")}),
    ]
    secrets = (
        served.token,
        token_hash(served.token),
        served.tokens.read_text(),
        *_key_material(served.ledger),
    )
    for res in answers:
        assert res.headers["content-security-policy"] == CONTENT_SECURITY_POLICY, res.url
        assert res.headers["x-content-type-options"] == "nosniff"
        assert res.headers["x-frame-options"] == "DENY"
        assert not any(s in res.text for s in secrets), res.url
        assert "Bearer" not in res.text and "PRIVATE KEY" not in res.text, res.url
    assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY and "http" not in CONTENT_SECURITY_POLICY
    assert served.client.get("/portal/static/nothing.js").status_code == 404
