"""Protocol 1 end to end: a FedAvg job of several sites on NVIDIA FLARE's simulator, every round's
aggregated weights anchored on a ledger.

``run_federated`` resolves the config once (data and encoder paths made absolute, so the simulator's
own working folders do not matter), writes it beside the run, builds the job (``AnchoringFedAvg`` on
the server, one ``SiteTrainer`` per site with that site's subjects), runs the simulator with one
thread per site, and returns what the server recorded per round.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from pathlib import Path
from typing import Any

from prosima.ledger.log.directory import Ledger
from prosima.models.config import Config, ConfigError, SiteConfig, dump_yaml, load_config
from prosima.models.data import EMBEDDED_SUBJECT, default_split
from prosima.optional import require

RESOLVED_CONFIG = "federated.yaml"
ALLOWED_PREFIX = "prosima.federated"


def plan_sites(cfg: Config) -> list[SiteConfig]:
    """The configured sites, or one site per training subject."""
    if cfg.federated.sites:
        return list(cfg.federated.sites)
    if cfg.data.root is None:
        return [SiteConfig("site-1", [EMBEDDED_SUBJECT]), SiteConfig("site-2", [EMBEDDED_SUBJECT])]
    train, _ = default_split(cfg.data.root, cfg.data.train_subjects, cfg.data.val_subjects)
    return [SiteConfig(f"site-{i + 1}", [s]) for i, s in enumerate(train)]


def _absolute(ref: str | None) -> str | None:
    if ref is None or ref.startswith("pretrained:"):
        return ref
    return str(Path(ref).resolve())


def resolve_for_run(cfg: Config, out_dir: Path) -> Config:
    """The config with paths made absolute, the schedule spanning all rounds, and the run's folder."""
    fed = cfg.federated
    data = dataclasses.replace(cfg.data, root=_absolute(cfg.data.root))
    train = dataclasses.replace(cfg.train, steps=fed.rounds * fed.local_steps)
    return dataclasses.replace(
        cfg,
        data=data,
        train=train,
        semantic_encoder=_absolute(cfg.semantic_encoder),
        init=_absolute(cfg.init),
        out_dir=str(out_dir),
    )


def allow_components(workspace: Path) -> None:
    """Let every participant build our server and site components: FLARE builds only the classes on
    a site's allow list (its own by default); the simulator copies ``local/`` to every site."""
    from nvflare.app_common.default_component_policy import DEFAULT_CLASS_ALLOW_LIST

    local = workspace / "local"
    local.mkdir(parents=True, exist_ok=True)
    policy = {"class_allow_list": [*DEFAULT_CLASS_ALLOW_LIST, ALLOWED_PREFIX]}
    (local / "resources.json").write_text(json.dumps(policy, indent=2))


def run_federated(
    cfg: Config, ledger_dir: str | Path, *, out_dir: str | Path | None = None, quiet: bool = True
) -> dict[str, Any]:
    """Run the federation; returns the sites, the per-round records and the time taken."""
    if cfg.task != "restore":
        raise ConfigError("federated training trains the restoration generator: set task: restore")
    require("nvflare", "fl")
    from nvflare.job_config.api import FedJob

    from prosima.federated.server import ROUNDS_LOG, AnchoringFedAvg
    from prosima.federated.site import SiteTrainer

    out = Path(out_dir or cfg.output_dir).resolve()
    if (out / ROUNDS_LOG).exists():
        raise ConfigError(f"{out} already holds a federated run; choose another out_dir")
    with Ledger.open(ledger_dir) as ledger:  # refuse a missing or damaged ledger before training
        ledger_path = ledger.path.resolve()
    sites = plan_sites(cfg)
    run_cfg = resolve_for_run(cfg, out)
    out.mkdir(parents=True, exist_ok=True)
    config_path = out / RESOLVED_CONFIG
    config_path.write_text(dump_yaml(run_cfg))
    load_config(config_path)  # what the sites and server will read must parse
    summary = [{"name": s.name, "subjects": list(s.subjects)} for s in sites]
    (out / "run.json").write_text(
        json.dumps(
            {
                "name": run_cfg.name,
                "engine": "nvflare simulator",
                "sites": summary,
                "rounds": run_cfg.federated.rounds,
                "local_steps": run_cfg.federated.local_steps,
                "seeds": {"init": run_cfg.seed, "site": "seed + 1000 * (site index + 1) + round"},
                "ledger": str(ledger_path),
            },
            indent=2,
        )
    )
    job = FedJob(name="prosima_fedavg", min_clients=len(sites))
    job.set_app_packages(["prosima"])
    job.to_server(
        AnchoringFedAvg(
            num_clients=len(sites),
            num_rounds=run_cfg.federated.rounds,
            config_path=str(config_path),
            out_dir=str(out),
            ledger_dir=str(ledger_path),
            sites=summary,
        )
    )
    for i, site in enumerate(sites):
        job.to(
            SiteTrainer(str(config_path), i, list(site.subjects), run_cfg.federated.local_steps), site.name
        )
    workspace = out / "nvflare"
    shutil.rmtree(workspace, ignore_errors=True)
    allow_components(workspace)
    t0 = time.perf_counter()
    job.simulator_run(str(workspace), threads=len(sites), log_config="concise" if quiet else None)
    seconds = time.perf_counter() - t0
    log = out / ROUNDS_LOG
    rounds = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    if len(rounds) != run_cfg.federated.rounds:
        raise RuntimeError(
            f"the federation finished {len(rounds)} of {run_cfg.federated.rounds} rounds; "
            f"see the simulator's log under {workspace}"
        )
    return {"out_dir": str(out), "sites": summary, "rounds": rounds, "seconds": round(seconds, 1)}
