"""What one running service holds, shared by every request: its settings, the ledger thread, the
jobs, the kept outputs and the token gate."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from prosima.service.anchor_queue import AnchorQueue
from prosima.service.commit_timing import commit_timing
from prosima.service.jobs import JobBoard
from prosima.service.ledger_worker import LedgerWorker
from prosima.service.outputs import OutputStore
from prosima.service.settings import ServiceSettings
from prosima.service.token_gate import TokenGate

STATE_ATTRIBUTE = "prosima"  # on app.state


@dataclass
class ServiceState:
    settings: ServiceSettings
    worker: LedgerWorker
    jobs: JobBoard
    outputs: OutputStore
    tokens: TokenGate
    anchors: AnchorQueue

    @classmethod
    def create(cls, settings: ServiceSettings) -> ServiceState:
        tokens = TokenGate(settings.tokens)
        tokens.check_file()
        worker = LedgerWorker(settings)
        return cls(
            settings,
            worker,
            JobBoard(settings.kept_jobs),
            OutputStore(settings.kept_outputs, settings.work_dir),
            tokens,
            AnchorQueue(worker, commit_timing),
        )

    def close(self) -> None:
        self.worker.close()
        self.outputs.close()


def service_state(request: Request) -> ServiceState:
    """The service the request came to."""
    state: ServiceState = getattr(request.app.state, STATE_ATTRIBUTE)
    return state
