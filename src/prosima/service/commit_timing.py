"""How long a session's last commit took in consensus, as every write route reports it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prosima.app.session import Session


def commit_timing(session: Session) -> dict[str, Any]:
    """How long the last commit's consensus rounds took, in ms: wall time and the critical path (the
    slowest node of each phase, as ``bench consensus`` reports it); empty for direct commits."""
    committee = session.provenance.committee
    if committee is None or not committee.last_rounds:
        return {}
    return {
        "commit": {
            "rounds": len(committee.last_rounds),
            "wall_ms": committee.last_seconds * 1e3,
            "critical_path_ms": sum(committee.last_critical.values()) * 1e3,
        }
    }
