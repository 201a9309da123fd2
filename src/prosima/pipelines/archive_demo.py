"""The demo through the service and the archive, the way a hospital runs PROSIMA: ``prosima serve``
(a child process) holds the ledger and runs a private Orthanc; the demo's slices are written as one
MR series and stored into Orthanc over DICOM with dcmtk's ``storescu``, as a modality would; the
service's follower anchors them from the archive's changes feed; every instance is verified by its
SOP Instance UID. Each instance is then replaced by a noisy copy under the same UIDs (deleted through
Orthanc's REST API and stored again over DICOM: what an insider's swap or a degraded re-send leaves
behind); the copy is found changed, never anchored as an original, restored by the service and stored
back as a derived series that verifies as a restoration by the anchored model. A tampered copy
uploaded to the verify endpoint is found changed, its shards named. Every step is a request to the
running service, timed as the client sees it. Every random choice derives from ``seed``."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from prosima.errors import InputError

GENERATOR = "pretrained:prosima-full"
STORE_TIMEOUT_S = 60.0  # how long a stored instance may take to be anchored
TAMPER_BLOCK = 32  # side of the block the tampered copy pastes over the slice's centre


class ArchiveDemoError(InputError, RuntimeError):
    """A tool the archive demo needs is missing, or the service answered what it should not."""


@dataclass(frozen=True)
class ArchiveDemoConfig:
    """Where the archive demo writes, on which ledger, and with what."""

    out: Path  # the archive, the DICOM files and the service's log go under it
    ledger: Path  # an existing ledger (the demo's)
    sigmas: tuple[float, ...] = (0.02, 0.05, 0.10)
    seed: int = 0
    threads: int | None = None  # torch threads of the service


def find_storescu() -> str:
    """dcmtk's ``storescu``, or a clear error saying how to get it."""
    found = shutil.which("storescu")
    if found is None:
        raise ArchiveDemoError(
            "the archive demo stores images over DICOM with dcmtk's storescu, which is not installed "
            "(Debian: apt-get install dcmtk)"
        )
    return found


def _store(storescu: str, peer: Any, files: Sequence[Path]) -> float:
    """C-STORE ``files`` into the archive as a modality; the seconds it took."""
    import subprocess

    start = time.perf_counter()
    done = subprocess.run(
        [
            storescu,
            "-aet",
            peer.calling_aet,
            "-aec",
            peer.called_aet,
            peer.host,
            str(peer.port),
            *map(str, files),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        raise ArchiveDemoError(f"storescu could not store into the archive: {done.stderr.strip()[-400:]}")
    return time.perf_counter() - start


class _Api:
    """The running service, each request timed."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.seconds: dict[str, list[float]] = {}

    def call(self, stage: str, method: str, path: str, **kw: Any) -> dict[str, Any]:
        start = time.perf_counter()
        res = self.client.request(method, path, **kw)
        if res.status_code == 202:
            body = self._job(res.json()["href"])
        else:
            body = res.json()
            if res.status_code >= 400:
                raise ArchiveDemoError(
                    f"{method} {path} answered {res.status_code}: {body.get('error', body)}"
                )
        self.seconds.setdefault(stage, []).append(time.perf_counter() - start)
        return dict(body)

    def _job(self, href: str) -> dict[str, Any]:
        while True:
            state = self.client.get(href).json()
            if state["state"] in ("succeeded", "failed"):
                return dict(state["result"])
            time.sleep(0.02)


def _until_verified(api: _Api, uids: Sequence[str], started: float) -> list[float]:
    """Ask for each instance's verdict until it verifies (the follower anchors on its next poll);
    the seconds from the store to each one's first positive verdict."""
    waits = []
    for uid in uids:
        while True:
            answer = api.call(
                "verify by SOP UID (waiting for the follower)", "POST", f"/v1/pacs/verify/{uid}"
            )
            if answer.get("ok"):
                waits.append(time.perf_counter() - started)
                break
            if time.perf_counter() - started > STORE_TIMEOUT_S:
                raise ArchiveDemoError(
                    f"instance {uid} was not anchored {STORE_TIMEOUT_S:.0f} s after its store"
                )
            time.sleep(0.1)
    return waits


def _replace(orthanc: Any, uid: str) -> None:
    """Delete the archive's instance ``uid`` (its REST API, with the archive's login), so that a copy
    stored under the same UIDs takes its place (Orthanc keeps the first of two stores otherwise)."""
    import httpx

    instance = orthanc.find_instance(uid)
    auth = (orthanc.user, orthanc.password) if orthanc.user is not None else None
    res = httpx.delete(f"{orthanc.url.rstrip('/')}/instances/{instance}", auth=auth, timeout=60)
    if res.status_code != 200:
        raise ArchiveDemoError(f"the archive did not delete instance {instance}: HTTP {res.status_code}")


def _psnr(clean: np.ndarray, values: np.ndarray) -> float:
    """PSNR of stored values (after the modality transform: 0-4095 for the unit range) to ``clean``."""
    from prosima.imaging.dicom_series import FULL_SCALE
    from prosima.imaging.metrics import psnr

    return psnr(clean, np.squeeze(np.asarray(values, np.float64)) / FULL_SCALE, 1.0)


def run_archive_demo(
    cfg: ArchiveDemoConfig,
    slices: Sequence[tuple[str, np.ndarray]],
    note: Callable[[str], None] = lambda _m: None,
) -> dict[str, Any]:
    """Run the archive story on ``slices`` (names and 2-D images in [0, 1]); its report section."""
    import httpx
    import pydicom

    from prosima.imaging.corruption import gaussian_noise
    from prosima.imaging.dicom_series import FULL_SCALE, changed_copy, stored_pixels, write_mr_series
    from prosima.imaging.io import read_image_2d
    from prosima.pacs.credentials import CREDENTIALS_FILE, read_credentials
    from prosima.pacs.orthanc_client import OrthancClient
    from prosima.pacs.orthanc_server import find_orthanc
    from prosima.service.child import child_service
    from prosima.service.tokens import TokenStore

    storescu = find_storescu()
    if find_orthanc() is None:  # a clear error before anything starts
        raise ArchiveDemoError(
            "the archive demo runs a private Orthanc, which is not installed "
            "(Debian: apt-get install orthanc orthanc-dicomweb)"
        )
    out = cfg.out
    for sub in ("corrupted", "restored"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    acquired = write_mr_series(out / "acquired", [image for _, image in slices], seed=cfg.seed)
    uids = [str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in acquired]
    store, token = TokenStore.open_or_empty(out / "tokens.json").with_new_token("demo")
    store.save()
    archive = out / "archive"
    t0 = time.perf_counter()
    note("starting prosima serve with a private Orthanc archive")
    with child_service(
        cfg.ledger, out / "service.log", tokens=store.path, archive=archive, threads=cfg.threads
    ) as child:
        ready_s = time.perf_counter() - t0
        if child.dicom is None:
            raise ArchiveDemoError("the service started no archive")
        login = read_credentials(archive / CREDENTIALS_FILE)
        orthanc = OrthancClient(str(login.url), login.user, login.password)
        with httpx.Client(
            base_url=child.base, timeout=600, headers={"Authorization": f"Bearer {token}"}
        ) as http:
            api = _Api(http)
            model = api.call(
                "anchor the model version", "POST", "/v1/models/anchor", params={"weights": GENERATOR}
            )
            if not model.get("ok", True) or "error" in model:
                raise ArchiveDemoError(f"anchoring {GENERATOR} through the service failed: {model}")
            note(f"storing {len(acquired)} slices into the archive over DICOM")
            started = time.perf_counter()
            store_s = _store(storescu, child.dicom, acquired)
            anchored_after = _until_verified(api, uids, started)

            verified = [api.call("verify by SOP UID", "POST", f"/v1/pacs/verify/{uid}") for uid in uids]
            originals = [
                {"name": name, "ok": bool(v["ok"]), "status": v["status"]}
                for (name, _), v in zip(slices, verified, strict=True)
            ]

            note("corrupting instances in the archive, restoring them through the service")
            restorations = []
            for k, ((name, clean), path, uid) in enumerate(zip(slices, acquired, uids, strict=True)):
                sigma = cfg.sigmas[k % len(cfg.sigmas)]
                noisy = gaussian_noise(clean, sigma, seed=cfg.seed + k).image
                copy = changed_copy(path, out / "corrupted" / path.name, lambda _p, n=noisy: stored_pixels(n))
                _replace(orthanc, uid)
                _store(storescu, child.dicom, [copy])  # the same UIDs, other pixels
                before = api.call("verify by SOP UID", "POST", f"/v1/pacs/verify/{uid}")
                done = api.call("restore + store back (a job)", "POST", f"/v1/pacs/restore/{uid}")
                if not done.get("ok"):
                    raise ArchiveDemoError(f"the service refused to restore {name}: {done.get('error')}")
                derived = done["orthanc"]["stored"]
                after = api.call("verify the derived instance", "POST", f"/v1/pacs/verify/{derived}")
                back_file = orthanc.instance_file(derived, out / "restored" / f"{name}.dcm")
                back = pydicom.dcmread(back_file, stop_before_pixels=True)
                restorations.append(
                    {
                        "name": name,
                        "sigma": sigma,
                        "corrupted_status": before["status"],
                        "corrupted_ok": bool(before["ok"]),
                        "psnr_corrupted": _psnr(clean, stored_pixels(noisy)),
                        "psnr_restored": _psnr(clean, read_image_2d(back_file).array),
                        "derived_instance": derived,
                        "references_source": str(back.SourceImageSequence[0].ReferencedSOPInstanceUID) == uid,
                        "restored_status": after["status"],
                        "verified": bool(after["ok"]),
                        "model": (after.get("model") or {}).get("name"),
                    }
                )

            note("uploading a tampered copy to the verify endpoint")
            showcase = max(range(len(slices)), key=lambda i: float((slices[i][1] > 0.05).mean()))
            c, h = slices[showcase][1].shape[0] // 2, TAMPER_BLOCK // 2

            def paste(pixels: np.ndarray) -> np.ndarray:
                pixels[c - h : c + h, c - h : c + h] = FULL_SCALE
                return pixels

            tampered = changed_copy(acquired[showcase], out / "tampered.dcm", paste)
            verdict = api.call(
                "verify an upload",
                "POST",
                "/v1/verify",
                files={"file": (tampered.name, tampered.read_bytes())},
            )
            tamper = {
                "name": slices[showcase][0],
                "block": TAMPER_BLOCK,
                "status": verdict["status"],
                "ok": bool(verdict["ok"]),
                "differing_shards": verdict.get("differing_shards", []),
            }
            seconds = api.seconds
    return {
        "service_ready_seconds": ready_s,
        "stored": len(acquired),
        "store_seconds": store_s,
        "anchored_after_seconds": anchored_after,
        "originals": originals,
        "restorations": restorations,
        "tamper": tamper,
        "request_seconds": seconds,
        "log": str(child.log.relative_to(out.parent))
        if child.log.is_relative_to(out.parent)
        else str(child.log),
    }
