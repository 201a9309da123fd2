"""Long work (a volume, a batch, many files to anchor) as a job: started at once, answered 202 with
its id, run on the ledger thread in turn; ``GET /v1/jobs/{id}`` gives its state, its progress and,
once done, the answer the request would have had (or the error)."""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from prosima.service.errors import NotFound

QUEUED, RUNNING, SUCCEEDED, FAILED = "queued", "running", "succeeded", "failed"


def _iso(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")


@dataclass
class Job:
    """One piece of long work: ``done`` of ``total`` steps (``total`` ``None`` until known); once
    finished, its ``status`` (the HTTP status of its answer) and the answer, ``result``."""

    id: str
    kind: str
    total: int | None = None
    done: int = 0
    state: str = QUEUED
    status: int | None = None
    result: dict[str, Any] | None = None
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def progress(self, done: int, total: int | None = None) -> None:
        """``done`` steps so far (of ``total``, when it is now known)."""
        with self._lock:
            self.done = done
            if total is not None:
                self.total = total

    def step(self) -> None:
        """One more step done."""
        with self._lock:
            self.done += 1

    def start(self) -> None:
        with self._lock:
            self.state, self.started = RUNNING, time.time()

    def finish(self, status: int, result: dict[str, Any]) -> None:
        """The job's answer: succeeded for a 200 (negative verdicts included), failed otherwise."""
        with self._lock:
            self.status, self.result = status, result
            self.state = SUCCEEDED if status == 200 else FAILED
            self.finished = time.time()
            if self.state == SUCCEEDED and self.total is not None:
                self.done = self.total

    @property
    def over(self) -> bool:
        return self.state in (SUCCEEDED, FAILED)

    def to_json(self) -> dict[str, Any]:
        with self._lock:
            return {
                "id": self.id,
                "kind": self.kind,
                "state": self.state,
                "progress": {"done": self.done, "total": self.total},
                "created": _iso(self.created),
                "started": _iso(self.started),
                "finished": _iso(self.finished),
                "status": self.status,
                "result": self.result,
            }


class JobBoard:
    """The jobs of this process; finished ones beyond ``kept`` are forgotten, oldest first."""

    def __init__(self, kept: int) -> None:
        self.kept = kept
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()

    def create(self, kind: str, total: int | None = None) -> Job:
        job = Job(secrets.token_urlsafe(12), kind, total)
        with self._lock:
            self._jobs[job.id] = job
            finished = [j.id for j in self._jobs.values() if j.over]
            for old in finished[: max(0, len(finished) - self.kept)]:
                del self._jobs[old]
        return job

    def get(self, job_id: str) -> Job:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise NotFound(
                f"no job {job_id!r} here (finished jobs are kept until {self.kept} newer ones finish)"
            )
        return job
