"""The federation's server: NVIDIA FLARE's FedAvg, with every round's aggregated weights saved,
validated on the held-out subject and anchored on the ledger as a model version (Protocol 1,
lines 9-14).

The server builds the initial model from the config's seed, so a run starts from known weights.
After each round it writes ``round-NNN.pt`` (a checkpoint ``bench restore --weights`` and
``load_model`` read), scores it on the validation subjects (PSNR/SSIM at the config's sigmas),
commits a ``model.version`` transaction (weights digest, round, sites with their subjects and slice
counts, metrics, config digest) and appends the round to ``rounds.jsonl``.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from nvflare.app_common.abstract.fl_model import FLModel
from nvflare.app_common.workflows.fedavg import FedAvg

from prosima.ledger.log.directory import Ledger
from prosima.models.checkpoint import save_checkpoint, state_digest
from prosima.models.config import dump_yaml, load_config
from prosima.models.training import Session
from prosima.provenance.model_versions import ModelVersion, anchor_version

ROUNDS_LOG = "rounds.jsonl"


class AnchoringFedAvg(FedAvg):
    """FedAvg whose ``save_model`` (called once per round) saves, scores and anchors the weights."""

    def __init__(
        self,
        *,
        num_clients: int,
        num_rounds: int,
        config_path: str,
        out_dir: str,
        ledger_dir: str,
        sites: list[dict[str, Any]],
    ) -> None:
        super().__init__(num_clients=num_clients, num_rounds=num_rounds, persistor_id="", save_filename=None)
        self.config_path = config_path
        self.out_dir = out_dir
        self.ledger_dir = ledger_dir
        self.sites = sites
        self._session: Session | None = None
        self._contributions: dict[str, dict[str, Any]] = {}
        self._started = time.perf_counter()
        self._previous: str | None = None

    # -- the model --------------------------------------------------------------------------------
    def _server_session(self) -> Session:
        """The model and validation data; the server holds the validation subjects only."""
        if self._session is None:
            cfg = load_config(self.config_path)
            val = cfg.data.val_subjects or [s for site in self.sites for s in site["subjects"]][:1]
            self._session = Session(cfg, train_subjects=val, val_subjects=val)
        return self._session

    def load_model(self) -> FLModel:
        """The initial global model: the generator as initialised from the config's seed."""
        state = self._server_session().model.state_dict()
        self._previous = state_digest(state)
        return FLModel(params={k: v.detach().cpu().numpy() for k, v in state.items()})

    def _aggregate_one_result(self, result: FLModel) -> bool:
        site = (result.meta or {}).get("prosima_site")
        if isinstance(site, dict) and "name" in site:
            self._contributions[str(site["name"])] = dict(site)
        return super()._aggregate_one_result(result)

    # -- one round's weights ------------------------------------------------------------------------
    def save_model(self, model: FLModel) -> None:
        """Save, validate and anchor the aggregated weights of the round just finished."""
        session = self._server_session()
        cfg = session.cfg
        state = {k: torch.as_tensor(np.asarray(v)) for k, v in (model.params or {}).items()}
        session.model.load_state_dict(state)
        digest = state_digest(session.model.state_dict())
        round_number = int(self.current_round)
        scores = session.validate()
        train_metrics = {k: float(v) for k, v in (model.metrics or {}).items() if isinstance(v, int | float)}
        sites = [self._contributions[name] for name in sorted(self._contributions)]
        self._contributions = {}
        out = Path(self.out_dir)
        path = out / f"round-{round_number:03d}.pt"
        save_checkpoint(
            path,
            {
                "kind": "generator",
                "name": cfg.name,
                "spec": session.spec(),
                "model_state": session.model.state_dict(),
                "round": round_number,
                "config": cfg.to_dict(),
                "split": {"sites": sites, "val": session.val_subjects},
                "links": session.links,
                "validation": scores,
            },
        )
        version = ModelVersion(
            digest=digest,
            name=str(cfg.name),
            kind="generator",
            round=round_number,
            rounds=int(self.num_rounds),
            sites=sites,
            metrics={**scores, **train_metrics},
            config_digest=hashlib.sha256(dump_yaml(cfg).encode()).hexdigest(),
            seeds={"init": cfg.seed},
            parent=self._previous,
        )
        with Ledger.open(self.ledger_dir) as ledger:
            anchored = anchor_version(ledger, version)
        self._previous = digest
        row = {
            "round": round_number,
            "digest": digest,
            "weights": path.name,
            "tx": anchored["tx"],
            "height": anchored["height"],
            "sites": sites,
            "validation": scores,
            "train": train_metrics,
            "seconds": round(time.perf_counter() - self._started, 1),
        }
        with (out / ROUNDS_LOG).open("a") as log:
            log.write(json.dumps(row) + "\n")
        self.info(f"round {round_number}: weights {digest[:16]} anchored at height {anchored['height']}")
