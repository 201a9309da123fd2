"""An unexpected failure is a 500 with a generic message: no traceback, no exception text, no path
in the response (the server's log has them)."""

from __future__ import annotations

from prosima.app.session import Session
from prosima.service.errors import INTERNAL_MESSAGE


def test_an_unexpected_error_is_a_generic_500(served, monkeypatch):
    def broken(self, *args, **kwargs):
        raise RuntimeError(f"secret detail in {served.root}")

    monkeypatch.setattr(Session, "verify", broken)
    res = served.client.post("/v1/verify", files=served.upload(served.originals[0]))
    assert res.status_code == 500 and res.json() == {"error": INTERNAL_MESSAGE}
    assert "Traceback" not in res.text and "secret" not in res.text
    job = served.client.post("/v1/verify/series", files=served.upload(served.originals[0], "files")).json()
    done = served.job_answer(job["href"])
    assert (
        done["state"] == "failed" and done["status"] == 500 and done["result"] == {"error": INTERNAL_MESSAGE}
    )


def test_no_error_body_carries_a_traceback(served):
    client = served.client
    answers = [
        client.post("/v1/verify", files={"file": ("x.dcm", b"DICM" * 40)}),
        client.post("/v1/verify", files={"file": ("x.nii", b"\x00" * 400)}),
        client.post("/v1/verify", files={"file": ("noextension", b"\x00" * 400)}),
        client.get("/v1/records/zz"),
        client.get("/v1/records/" + "0" * 64),
        client.get("/v1/proofs/inclusion/" + "1" * 64),
        client.get("/v1/proofs/consistency?from_height=5&to_height=2"),
        client.get("/v1/blocks/99999"),
        client.get("/v1/records"),
        client.post("/v1/proofs/check", files={"file": ("p.json", b"{not json")}),
        client.post("/v1/models/check", files={"file": ("w.pt", b"\x00" * 64)}),
    ]
    for res in answers:
        assert 400 <= res.status_code < 500, (res.request.url, res.status_code, res.text)
        assert "Traceback" not in res.text and set(res.json()) == {"error"}, res.text
