"""Who may write: a request carrying ``Authorization: Bearer <token>`` for a token in the service's
tokens file (``token_gate``). Reads (verify, records, proofs) need no token."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from prosima.service.state import service_state
from prosima.service.tokens import TokenEntry

bearer = HTTPBearer(
    auto_error=False,
    description="An API token made by 'prosima serve token create --tokens FILE' (writes only).",
)


def require_writer(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> TokenEntry:
    """A FastAPI dependency: the writer's token entry, or a 401 (403 when writes are off)."""
    token = credentials.credentials if credentials is not None else None
    return service_state(request).tokens.check(token)
