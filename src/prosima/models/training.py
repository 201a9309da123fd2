"""Training loops for the encoders and the generator; a local step a federated engine can call.

``train(config)`` runs one configured job: seeded initialisation, a progress bar, validation every
``val_every`` steps (PSNR/SSIM for the generator, contrastive loss and retrieval accuracy for an
encoder), checkpoints every ``checkpoint_every`` steps or ``checkpoint_minutes``, and ``resume`` from
the last checkpoint, which reproduces the uninterrupted run. The resolved config, seeds and
environment are written beside the checkpoint.

``local_train(config, model_state, subjects, steps)`` is Protocol 1's inner loop: it trains one site's
copy of the model on that site's subjects for a step budget and returns the new weights and metrics.
The semantic encoder is frozen throughout: its fingerprints are anchored, so it must not drift.
"""

from __future__ import annotations

import dataclasses
import json
import math
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from prosima.imaging.metrics import brain_mask, masked_psnr, psnr, ssim
from prosima.imaging.shards import plan_shards
from prosima.models.checkpoint import CheckpointError, load_checkpoint, save_checkpoint, state_digest
from prosima.models.config import Config, ConfigError, config_from_dict, dump_yaml
from prosima.models.data import PatchSampler, SliceBank, default_split, load_bank, noisy_copies
from prosima.models.encoder import SemanticEncoder
from prosima.models.fingerprint import compute_fingerprints, shard_index_map
from prosima.models.losses import RestorationLoss
from prosima.models.perceptual import feature_network, freeze
from prosima.models.pretrained import init_lineage, load_model_ref
from prosima.models.selfsup import PretextHeads, make_view, pretext_loss, sample_windows
from prosima.models.unet import HybridUNet, blind_state, count_parameters, inflate_state

_FINGERPRINT_CACHE: dict[tuple[str, tuple, int], torch.Tensor] = {}


@dataclass
class LocalResult:
    """What one site returns after its local steps."""

    state: dict[str, torch.Tensor]
    optimizer_state: dict[str, Any]
    metrics: dict[str, float]
    steps: int


def bank_fingerprints(encoder: nn.Module, bank: SliceBank, k: int) -> torch.Tensor:
    """Dequantised fingerprints ``[N, K, D]`` of every clean slice (cached per encoder and bank)."""
    key = (state_digest(encoder.state_dict()), bank.meta, int(k))
    if key not in _FINGERPRINT_CACHE:
        rows = [compute_fingerprints(encoder, img.numpy(), k).dequantise() for img in bank.images]
        _FINGERPRINT_CACHE[key] = torch.from_numpy(np.stack(rows))
    return _FINGERPRINT_CACHE[key]


def _random_encoder(cfg: Config) -> SemanticEncoder:
    torch.manual_seed(cfg.seed + 7)
    e = cfg.encoder
    return SemanticEncoder(e.kind, e.channels, e.embed_dim)


class Session:
    """The model, frozen helpers, optimiser and data of one run (or one site's local run)."""

    def __init__(
        self,
        cfg: Config,
        train_subjects: Sequence[str] | None = None,
        val_subjects: Sequence[str] | None = None,
        *,
        with_validation: bool = True,
    ) -> None:
        self.cfg = cfg
        torch.set_num_threads(cfg.threads)
        d = cfg.data
        default_train, default_val = default_split(d.root, d.train_subjects, d.val_subjects)
        self.train_subjects = list(train_subjects) if train_subjects is not None else default_train
        self.val_subjects = list(val_subjects) if val_subjects is not None else default_val
        self.links: dict[str, Any] = {}
        torch.manual_seed(cfg.seed)
        if cfg.task == "encoder":
            e = cfg.encoder
            self.model: nn.Module = SemanticEncoder(e.kind, e.channels, e.embed_dim)
            self.heads: PretextHeads | None = PretextHeads(
                e.embed_dim, e.projection_dim, e.recon_size, e.objective == "contrastive+reconstruction"
            )
            params = [*self.model.parameters(), *self.heads.parameters()]
        else:
            self.heads = None
            self.encoder = self._semantic_encoder()
            fp_dim = self.encoder.embed_dim if cfg.fingerprint.use else 0
            g = cfg.generator
            self.model = HybridUNet(
                g.channels,
                g.unshuffle,
                int(g.attention_blocks or 0),
                g.heads,
                g.mlp_ratio,
                fp_dim,
                g.cond_channels,
                g.residual,
                context=g.context,
            )
            lo = cfg.loss
            features = feature_network(lo.perceptual_network, self.encoder) if lo.lambda1 else None
            self.criterion = RestorationLoss(
                lo.pixel, lo.lambda1 or 0.0, lo.lambda2 or 0.0, features, self.encoder, lo.semantic_tile
            )
            params = list(self.model.parameters())
        if cfg.init:
            self._init_from(cfg.init)
        if cfg.train.channels_last:
            self.model.to(memory_format=torch.channels_last)
        o = cfg.optim
        self.optimizer = torch.optim.Adam(
            params, lr=o.lr, betas=(o.betas[0], o.betas[1]), weight_decay=o.weight_decay
        )
        self.context = cfg.generator.context if cfg.task == "restore" else 0
        self.bank = load_bank(
            d.root,
            self.train_subjects,
            d.contrasts,
            d.min_brain_fraction,
            d.max_slices_per_volume,
            self.context,
        )
        self._build_sampler()
        self.validation = self._build_validation() if with_validation else None

    # -- construction ------------------------------------------------------------------------------
    def _semantic_encoder(self) -> nn.Module:
        ref = self.cfg.semantic_encoder
        if ref is None:
            enc = _random_encoder(self.cfg)
            self.links["semantic_encoder"] = {"ref": None, "note": "random, untrained (tests only)"}
        else:
            enc, _ = load_model_ref(ref, "encoder")
            self.links["semantic_encoder"] = {"ref": ref}
        freeze(enc)
        self.links["semantic_encoder"]["state_digest"] = state_digest(enc.state_dict())
        return enc

    def _init_from(self, ref: str) -> None:
        model, _ = load_model_ref(ref, "encoder" if self.cfg.task == "encoder" else "generator")
        state = model.state_dict()
        if self.cfg.task == "restore" and self.cfg.generator.context and not model.spec.context:
            state = inflate_state(state, self.model.spec)  # a 2-D model starts a 2.5-D one
        if self.cfg.task == "restore" and model.conditioned and not self.model.conditioned:
            state = blind_state(state)  # a conditioned model starts a blind one
        digest = state_digest(model.state_dict())
        self.links["init"] = {"ref": ref, "state_digest": digest, **init_lineage(ref)}
        try:
            self.model.load_state_dict(state)
        except RuntimeError as exc:
            raise ConfigError(f"init {ref!r} does not fit this architecture: {exc}") from None

    def _build_sampler(self) -> None:
        cfg = self.cfg
        self.fingerprints = self.index_map = None
        if cfg.task == "restore" and cfg.fingerprint.use:
            self.fingerprints = bank_fingerprints(self.encoder, self.bank, cfg.fingerprint.k)
            shape = tuple(self.bank.images.shape[-2:])
            self.index_map = torch.from_numpy(shard_index_map(plan_shards(shape, cfg.fingerprint.k, 0)))
        t = cfg.train
        self.sampler = PatchSampler(
            self.bank,
            t.patch,
            t.batch_size,
            (t.sigma_min, t.sigma_max),
            cfg.seed + 1,
            self.fingerprints,
            self.index_map,
        )

    def _build_validation(self) -> dict[str, Any]:
        cfg, d, t = self.cfg, self.cfg.data, self.cfg.train
        bank = load_bank(
            d.root,
            self.val_subjects,
            d.contrasts,
            d.min_brain_fraction,
            d.max_slices_per_volume,
            self.context,
        ).subset(d.val_slices)
        out: dict[str, Any] = {"bank": bank}
        if cfg.task == "encoder":
            g = torch.Generator().manual_seed(t.val_seed)
            e = cfg.encoder
            a, b = sample_windows(bank.images, 256, e.window, e.jitter, g)
            va, ta = make_view(a, e.views, g, e.sigma_max)
            vb, _ = make_view(b, e.views, g, e.sigma_max)
            out.update(view_a=va, view_b=vb, target_a=ta)
        else:
            out["noisy"] = noisy_copies(bank, t.val_sigmas, t.val_seed)
            out["masks"] = [brain_mask(img.numpy()) for img in bank.images]
            if cfg.fingerprint.use:
                out["fingerprints"] = bank_fingerprints(self.encoder, bank, cfg.fingerprint.k)
                shape = tuple(bank.images.shape[-2:])
                out["index_map"] = torch.from_numpy(shard_index_map(plan_shards(shape, cfg.fingerprint.k, 0)))
        return out

    # -- steps -------------------------------------------------------------------------------------
    def lr_at(self, step: int) -> float:
        o, total = self.cfg.optim, max(self.cfg.train.steps, 1)
        if o.warmup_steps and step < o.warmup_steps:
            return o.lr * (0.1 + 0.9 * step / o.warmup_steps)
        if o.schedule == "cosine":
            span = max(total - o.warmup_steps, 1)
            frac = min(max(step - o.warmup_steps, 0) / span, 1.0)
            return o.min_lr + 0.5 * (o.lr - o.min_lr) * (1 + math.cos(math.pi * frac))
        return o.lr

    def train_step(self, step: int) -> dict[str, float]:
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr_at(step)
        self.model.train()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.cfg.train.precision == "bf16"):
            if self.cfg.task == "encoder":
                loss, parts = self._encoder_loss()
            else:
                loss, parts = self._generator_loss()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.optim.grad_clip:
            params = [p for g in self.optimizer.param_groups for p in g["params"]]
            parts["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(params, self.cfg.optim.grad_clip))
        self.optimizer.step()
        return parts

    def _encoder_loss(self) -> tuple[torch.Tensor, dict[str, float]]:
        e, g = self.cfg.encoder, self.sampler.generator
        a, b = sample_windows(self.bank.images, self.cfg.train.batch_size, e.window, e.jitter, g)
        va, ta = make_view(a, e.views, g, e.sigma_max)
        vb, _ = make_view(b, e.views, g, e.sigma_max)
        assert self.heads is not None
        self.heads.train()
        return pretext_loss(self.model, self.heads, va, vb, ta, e.temperature, e.recon_weight)

    def _generator_loss(self) -> tuple[torch.Tensor, dict[str, float]]:
        batch = self.sampler.next()
        keep = None
        p = self.cfg.fingerprint.dropout
        if batch.fingerprints is not None and p > 0:
            keep = (torch.rand(batch.clean.shape[0], generator=self.sampler.generator) >= p).float()
        noisy = batch.noisy
        if self.cfg.train.channels_last:
            noisy = noisy.contiguous(memory_format=torch.channels_last)
        out = self.model(noisy, batch.fingerprints, batch.shard_index, keep)
        return self.criterion(out.float(), batch.clean, self.cfg.loss.aux_batch)

    # -- validation --------------------------------------------------------------------------------
    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        if self.validation is None:
            raise RuntimeError("this session was built without validation data")
        self.model.eval()
        v = self.validation
        if self.cfg.task == "encoder":
            assert self.heads is not None
            self.heads.eval()
            e = self.cfg.encoder
            _, parts = pretext_loss(
                self.model, self.heads, v["view_a"], v["view_b"], v["target_a"], e.temperature, e.recon_weight
            )
            return {f"val_{k}": x for k, x in parts.items()} | {"val_loss": parts["total"]}
        bank: SliceBank = v["bank"]
        metrics: dict[str, float] = {}
        totals, pixels, psnrs = [], [], []
        for si, sigma in enumerate(self.cfg.train.val_sigmas):
            rows: dict[str, list[float]] = {"psnr": [], "ssim": [], "psnr_brain": []}
            for start in range(0, len(bank), 4):
                sl = slice(start, start + 4)
                noisy = v["noisy"][si, sl]
                fps = v["fingerprints"][sl] if "fingerprints" in v else None
                idx = v.get("index_map", None)
                out = self.model(noisy, fps, idx)
                clean = bank.images[sl].unsqueeze(1)
                _, parts = self.criterion(out, clean)
                totals.append(parts["total"])
                pixels.append(parts["pixel"])
                for j in range(out.shape[0]):
                    c, r = clean[j, 0].numpy(), out[j, 0].numpy()
                    rows["psnr"].append(psnr(c, r, 1.0))
                    rows["ssim"].append(ssim(c, r, 1.0))
                    rows["psnr_brain"].append(masked_psnr(c, r, v["masks"][start + j], 1.0))
            for key, vals in rows.items():
                metrics[f"val_{key}@{sigma:g}"] = float(np.mean(vals))
            psnrs.append(metrics[f"val_psnr@{sigma:g}"])
        metrics["val_loss"] = float(np.mean(totals))
        metrics["val_pixel"] = float(np.mean(pixels))
        metrics["val_psnr"] = float(np.mean(psnrs))
        return metrics

    # -- state -------------------------------------------------------------------------------------
    def spec(self) -> dict[str, Any]:
        return self.model.spec.to_dict()  # type: ignore[union-attr]

    def payload(self, step: int, elapsed: float, extra: dict[str, Any]) -> dict[str, Any]:
        return {
            "kind": "encoder" if self.cfg.task == "encoder" else "generator",
            "name": self.cfg.name,
            "spec": self.spec(),
            "model_state": self.model.state_dict(),
            "heads_state": self.heads.state_dict() if self.heads is not None else None,
            "optimizer_state": self.optimizer.state_dict(),
            "sampler_state": self.sampler.state_dict(),
            "step": step,
            "elapsed_s": elapsed,
            "config": self.cfg.to_dict(),
            "split": {"train": self.train_subjects, "val": self.val_subjects},
            "links": self.links,
            **extra,
        }

    def load(self, payload: dict[str, Any]) -> None:
        self.model.load_state_dict(payload["model_state"])
        if self.heads is not None and payload.get("heads_state") is not None:
            self.heads.load_state_dict(payload["heads_state"])
        self.optimizer.load_state_dict(payload["optimizer_state"])
        self.sampler.load_state_dict(payload["sampler_state"])


def _comparable(cfg: dict[str, Any]) -> dict[str, Any]:
    """A config without the fields a resumed run may change."""
    c = json.loads(json.dumps(cfg))
    for key in ("steps", "val_every", "checkpoint_every", "checkpoint_minutes", "log_every"):
        c["train"].pop(key, None)
    for key in ("threads", "out_dir", "init", "federated"):
        c.pop(key, None)
    return c


def _environment() -> dict[str, Any]:
    import monai

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "monai": monai.__version__,
        "numpy": np.__version__,
        "machine": platform.machine(),
    }


def train(
    cfg: Config,
    *,
    resume: bool = False,
    progress: bool = True,
    stop_after: int | None = None,
    console: Any = None,
) -> dict[str, Any]:
    """Run (or resume) one configured training job; returns a summary. ``stop_after`` ends early (tests)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    console = console or Console()
    out = cfg.output_dir
    ckpt_path, best_path = out / "checkpoint.pt", out / "best.pt"
    if ckpt_path.exists() and not resume:
        raise ConfigError(
            f"{out} already holds a checkpoint: pass --resume to continue it, or choose another out_dir"
        )
    session = Session(cfg)
    start, elapsed, best, history = 0, 0.0, None, []
    if resume:
        if not ckpt_path.exists():
            raise CheckpointError(f"nothing to resume: {ckpt_path} does not exist")
        payload = load_checkpoint(ckpt_path)
        # a checkpoint saved before a config field existed resumes as if it had held the default
        if _comparable(config_from_dict(payload["config"]).to_dict()) != _comparable(cfg.to_dict()):
            raise ConfigError(
                f"{ckpt_path} was trained with another config; only steps, threads and the "
                "logging/checkpoint intervals may change on resume"
            )
        session.load(payload)
        start, elapsed, best = int(payload["step"]), float(payload["elapsed_s"]), payload.get("best")
        history = list(payload.get("history", []))
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(dump_yaml(cfg))
    run_info = {
        "name": cfg.name,
        "task": cfg.task,
        "variant": cfg.variant,
        "seeds": {
            "init": cfg.seed,
            "sampler": cfg.seed + 1,
            "random_encoder": cfg.seed + 7,
            "validation": cfg.train.val_seed,
        },
        "parameters": count_parameters(session.model),
        "split": {"train": session.train_subjects, "val": session.val_subjects},
        "train_slices": len(session.bank),
        "links": session.links,
        "environment": _environment(),
    }
    (out / "run.json").write_text(json.dumps(run_info, indent=2))
    log = (out / "metrics.jsonl").open("a")
    t = cfg.train
    end = t.steps if stop_after is None else min(t.steps, start + stop_after)
    last_val: dict[str, float] | None = history[-1] if history else None
    running: dict[str, list[float]] = {}
    t0 = time.perf_counter() - elapsed
    last_save = time.perf_counter()

    def save(step: int) -> None:
        nonlocal last_save
        extra = {"best": best, "last_validation": last_val, "history": history}
        save_checkpoint(ckpt_path, session.payload(step, time.perf_counter() - t0, extra))
        last_save = time.perf_counter()

    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeRemainingColumn(),
    )
    if start == 0 and end > 0:  # the untrained model's score: what training must improve on
        last_val = {"step": 0, "seconds": 0.0, **session.validate()}
        history.append(last_val)
        log.write(json.dumps({"type": "val", **last_val}) + "\n")
    with Progress(*columns, console=console, disable=not progress, transient=False) as bar:
        task = bar.add_task(cfg.name, total=t.steps, completed=start, info="")
        for step in range(start, end):
            parts = session.train_step(step)
            for k, x in parts.items():
                running.setdefault(k, []).append(x)
            done = step + 1
            if done % t.log_every == 0 or done == end:
                row = {
                    "step": done,
                    "lr": session.lr_at(step),
                    **{k: float(np.mean(x)) for k, x in running.items()},
                }
                log.write(json.dumps({"type": "train", **row}) + "\n")
                log.flush()
                running = {}
            if done % t.val_every == 0 or done == t.steps or (done == end and stop_after is not None):
                last_val = {"step": done, "seconds": round(time.perf_counter() - t0, 1), **session.validate()}
                history.append(last_val)
                log.write(json.dumps({"type": "val", **last_val}) + "\n")
                log.flush()
                key = "val_psnr" if cfg.task == "restore" else "val_loss"
                sign = 1.0 if cfg.task == "restore" else -1.0
                if best is None or sign * (last_val[key] - best[key]) > 0:
                    best = dict(last_val)
                    save_checkpoint(
                        best_path,
                        session.payload(
                            done, time.perf_counter() - t0, {"best": best, "last_validation": last_val}
                        ),
                    )
            if (
                done % t.checkpoint_every == 0
                or time.perf_counter() - last_save > 60 * t.checkpoint_minutes
                or done == end
            ):
                save(done)
            info = f"loss {parts['total']:.4f}"
            if last_val is not None:
                key = "val_psnr" if cfg.task == "restore" else "val_loss"
                info += f"  {key} {last_val[key]:.3f}"
            bar.update(task, completed=done, info=info)
    log.close()
    if start >= end and not ckpt_path.exists():
        save(start)
    return {
        "out_dir": str(out),
        "checkpoint": str(ckpt_path),
        "best_checkpoint": str(best_path) if best_path.exists() else None,
        "steps": end,
        "seconds": round(time.perf_counter() - t0, 1),
        "first_validation": history[0] if history else None,
        "last_validation": last_val,
        "best": best,
    }


def local_train(
    cfg: Config,
    model_state: dict[str, torch.Tensor] | None,
    subjects: Sequence[str],
    steps: int,
    *,
    seed: int | None = None,
    optimizer_state: dict[str, Any] | None = None,
    step_offset: int = 0,
    validate: bool = False,
) -> LocalResult:
    """Train one site's copy of the model on ``subjects`` for ``steps`` steps (Protocol 1, lines 3-8).

    ``model_state`` is the global model to start from (None: a fresh one from ``cfg.seed``); ``seed`` picks
    the site's batches; ``step_offset`` places these steps on the learning-rate schedule.
    """
    if seed is not None:
        cfg = dataclasses.replace(cfg, seed=int(seed))
    session = Session(cfg, train_subjects=subjects, with_validation=validate)
    if model_state is not None:
        session.model.load_state_dict(model_state)
    if optimizer_state is not None:
        session.optimizer.load_state_dict(optimizer_state)
    sums: dict[str, float] = {}
    for i in range(steps):
        for k, x in session.train_step(step_offset + i).items():
            sums[k] = sums.get(k, 0.0) + x
    metrics = {k: x / max(steps, 1) for k, x in sums.items()}
    metrics["n_slices"] = float(len(session.bank))
    if validate:
        metrics.update(session.validate())
    state = {k: v.detach().clone() for k, v in session.model.state_dict().items()}
    return LocalResult(state, session.optimizer.state_dict(), metrics, steps)


def read_metrics(out_dir: str | Path) -> list[dict[str, Any]]:
    """The rows of a run's ``metrics.jsonl``."""
    path = Path(out_dir) / "metrics.jsonl"
    return (
        [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
    )
