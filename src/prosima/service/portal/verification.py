"""The verifications the portal shows, run on the ledger thread: an uploaded file or an archive's
instance, judged by the service's session exactly as ``POST /v1/verify`` judges it, with (for a
2-D image) the tamper heatmap as base64 PNG and the record chain of the matched or nearest record."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prosima.app.verify_results import VerifyResult
from prosima.app.verifying import write_heatmap
from prosima.service.portal.lookups import image_chain
from prosima.service.routes.verify import verified_answer

if TYPE_CHECKING:
    from prosima.app.session import Session, Verified
    from prosima.pacs.orthanc_client import OrthancClient

HEATMAP_FILE = "heatmap.png"


def page_answer(session: Session, result: Verified, name: str, folder: Path) -> dict[str, Any]:
    """The verdict (the API's JSON), its heatmap and its record chain, for the verdict page."""
    answer: dict[str, Any] = {"file": name, "verdict": verified_answer(result)}
    if isinstance(result, VerifyResult):
        png = write_heatmap(result, folder / HEATMAP_FILE)
        answer["heatmap_png"] = base64.b64encode(png.read_bytes()).decode("ascii")
        verdict = result.verdict
        tx = (verdict.record or verdict.nearest or {}).get("tx")
        answer["chain"] = image_chain(session, tx) if tx else None
    return answer


def verify_upload(session: Session, image: Path, name: str, folder: Path, *, volume: bool) -> dict[str, Any]:
    """Verify the uploaded ``image`` (every slice of a volume; a 2-D image with its heatmap drawn
    into ``folder``)."""
    result = session.verify(image, heatmap=not volume)
    return page_answer(session, result, name, folder)


def verify_archived(session: Session, client: OrthancClient, instance: str, folder: Path) -> dict[str, Any]:
    """Verify the archive's ``instance`` (an Orthanc id or a SOP Instance UID), read into a private
    temporary folder by ``prosima.pacs.instances``; the page names it by its Orthanc id."""
    from prosima.pacs.instances import downloaded, resolve_instance

    instance_id = resolve_instance(client, instance)
    with downloaded(client, instance_id) as path:
        result = session.verify(path, heatmap=True)
    return page_answer(session, result, f"archive instance {instance_id}", folder) | {"instance": instance_id}
