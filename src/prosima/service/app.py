"""The service's ASGI application: ``create_app(settings)``.

Every router is listed once, in ``ROUTERS``; a new area of the API (the portal's pages) is one more
router there. The ledger is opened on the ledger thread when the application starts (``/readyz``
says when it is ready; requests meanwhile wait for it) and closed when it stops.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version

from fastapi import APIRouter, FastAPI

from prosima.service.archive_follower import ArchiveFollower
from prosima.service.archive_link import LINK_ATTRIBUTE, ArchiveLink
from prosima.service.body_limit import BodyLimit
from prosima.service.errors import install_error_handlers
from prosima.service.portal.archive import ARCHIVE_ATTRIBUTE
from prosima.service.routes import (
    anchor,
    exports,
    health,
    jobs,
    models,
    pacs,
    portal,
    proofs,
    records,
    restore,
    verify,
)
from prosima.service.settings import ServiceSettings
from prosima.service.state import STATE_ATTRIBUTE, ServiceState

ROUTERS: tuple[APIRouter, ...] = (
    health.router,
    verify.router,
    anchor.router,
    restore.router,
    records.router,
    proofs.router,
    models.router,
    exports.router,
    jobs.router,
    pacs.router,
    portal.router,
)

DESCRIPTION = (
    "PROSIMA beside the archive: verify images against the ledger (open to anyone), anchor and "
    "restore them (an API token: 'Authorization: Bearer ...'), look up records, proofs, tree heads "
    "and model versions. Long work answers 202 with a job to follow at /v1/jobs/{id}."
)


def create_app(settings: ServiceSettings) -> FastAPI:
    """The service for ``settings``: its routers, error answers and body size limit, and the archive
    it is connected to (a private one is started here and stopped when the service stops)."""
    state = ServiceState.create(settings)
    link = ArchiveLink.open(settings)
    follower = None
    if link is not None and settings.watch_interval > 0:
        follower = ArchiveFollower(state.worker, link.client, settings.watch_interval)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state.worker.start()
        if follower is not None:
            follower.start()
        try:
            yield
        finally:
            try:
                if follower is not None:
                    follower.stop()
                state.close()
            finally:
                if link is not None:
                    link.close()

    app = FastAPI(
        title="PROSIMA service",
        version=version("prosima"),
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    setattr(app.state, STATE_ATTRIBUTE, state)
    if link is not None:
        setattr(app.state, LINK_ATTRIBUTE, link)
        setattr(app.state, ARCHIVE_ATTRIBUTE, link.client)  # the portal's instance field appears
    if follower is not None:
        setattr(app.state, pacs.FOLLOWER_ATTRIBUTE, follower)
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    return app
