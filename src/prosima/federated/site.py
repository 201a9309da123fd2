"""One hospital site of a federated run: an NVIDIA FLARE executor that trains the global model on
the site's own subjects for a step budget and returns the new weights (Protocol 1, lines 3-8).

The site keeps its Adam state between rounds (it never leaves the site). Its batches are drawn with
``site_seed(config seed, site index, round)``, recorded in the result's metadata. The result's weight
in the average is the number of training slices the site holds (FedAvg's n_k).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from nvflare.apis.executor import Executor
from nvflare.apis.fl_constant import FLMetaKey, ReturnCode
from nvflare.apis.fl_context import FLContext
from nvflare.apis.shareable import Shareable, make_reply
from nvflare.apis.signal import Signal
from nvflare.app_common.abstract.fl_model import FLModel, ParamsType
from nvflare.app_common.utils.fl_model_utils import FLModelUtils

from prosima.models.config import load_config
from prosima.models.training import local_train

TRAIN_TASK = "train"


def site_seed(seed: int, site_index: int, round_number: int) -> int:
    """The seed of a site's batches in one round (distinct for every site and round)."""
    return seed + 1000 * (site_index + 1) + round_number


class SiteTrainer(Executor):
    """Trains the received global weights on ``subjects`` for ``local_steps`` steps per round."""

    def __init__(self, config_path: str, site_index: int, subjects: list[str], local_steps: int) -> None:
        super().__init__()
        self.config_path = config_path
        self.site_index = site_index
        self.subjects = subjects
        self.local_steps = local_steps
        self._optimizer_state: dict[str, Any] | None = None

    def execute(
        self, task_name: str, shareable: Shareable, fl_ctx: FLContext, abort_signal: Signal
    ) -> Shareable:
        """One local round: the global weights in, the site's weights, metrics and data summary out."""
        if task_name != TRAIN_TASK:
            return make_reply(ReturnCode.TASK_UNKNOWN)
        cfg = load_config(self.config_path)
        incoming = FLModelUtils.from_shareable(shareable)
        round_number = int(incoming.current_round or 0)
        state = {k: torch.as_tensor(np.asarray(v)) for k, v in (incoming.params or {}).items()}
        seed = site_seed(cfg.seed, self.site_index, round_number)
        result = local_train(
            cfg,
            state or None,
            self.subjects,
            self.local_steps,
            seed=seed,
            optimizer_state=self._optimizer_state,
            step_offset=round_number * self.local_steps,
        )
        if abort_signal.triggered:
            return make_reply(ReturnCode.TASK_ABORTED)
        self._optimizer_state = result.optimizer_state
        n_slices = int(result.metrics.pop("n_slices"))
        site = fl_ctx.get_identity_name()
        outgoing = FLModel(
            params={k: v.detach().cpu().numpy() for k, v in result.state.items()},
            params_type=ParamsType.FULL,
            metrics={f"train_{k}": float(v) for k, v in result.metrics.items()},
            current_round=round_number,
            meta={
                FLMetaKey.NUM_STEPS_CURRENT_ROUND: n_slices,
                "prosima_site": {
                    "name": site,
                    "subjects": list(self.subjects),
                    "n_slices": n_slices,
                    "steps": result.steps,
                    "seed": seed,
                },
            },
        )
        return FLModelUtils.to_shareable(outgoing)
