"""Training configuration: typed sections read from YAML, every field documented, variants resolved.

A config file holds only the fields it changes; everything else takes the default below. Unknown keys
are errors. ``resolve`` fills the fields a restoration ``variant`` decides (loss weights, fingerprint
conditioning, attention blocks) unless the file set them, and the resolved config is saved beside
every checkpoint. Relative paths are relative to the directory the command runs in.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prosima.errors import InputError

TASKS = ("encoder", "restore")
PRECISIONS = ("fp32", "bf16")
VARIANTS: dict[str, dict[str, Any]] = {
    # lambda1 / lambda2 of None take LossConfig.default_lambda1 / default_lambda2
    "pixel": {"perceptual": False, "semantic": False, "fingerprint": False, "attention_blocks": 0},
    "perceptual": {"perceptual": True, "semantic": False, "fingerprint": False, "attention_blocks": 0},
    "semantic": {"perceptual": True, "semantic": True, "fingerprint": False, "attention_blocks": 0},
    "no-fingerprint": {"perceptual": True, "semantic": True, "fingerprint": False, "attention_blocks": 2},
    "full": {"perceptual": True, "semantic": True, "fingerprint": True, "attention_blocks": 2},
}
VARIANT_METHOD = {
    "pixel": "unet-pixel",
    "perceptual": "unet-perceptual",
    "semantic": "unet-semantic",
    "full": "prosima-full",
    "no-fingerprint": "prosima-no-fingerprint",
}


class ConfigError(InputError, ValueError):
    """A config file or override that cannot be used."""


def _doc(text: str) -> dict[str, str]:
    """Field metadata carrying the field's documentation."""
    return {"doc": text}


@dataclass
class DataConfig:
    """Which slices to train and validate on."""

    root: str | None = field(
        default=None,
        metadata=_doc("BraTS folder (<subject>/<subject>-<contrast>.nii.gz); null = embedded MNI152 brain."),
    )
    train_subjects: list[str] = field(
        default_factory=list,
        metadata=_doc("Subject folders to train on (empty = every subject not in val_subjects)."),
    )
    val_subjects: list[str] = field(
        default_factory=list, metadata=_doc("Subject folders to validate on (never trained on).")
    )
    contrasts: list[str] = field(
        default_factory=lambda: ["t1n"], metadata=_doc("BraTS contrasts to use: any of t1n, t1c, t2w, t2f.")
    )
    min_brain_fraction: float = field(
        default=0.05, metadata=_doc("Keep axial slices with at least this fraction of non-zero voxels.")
    )
    max_slices_per_volume: int | None = field(
        default=None, metadata=_doc("Evenly spaced subset of slices per volume (null = all).")
    )
    val_slices: int = field(
        default=16, metadata=_doc("Whole validation slices scored at each validation (evenly spaced).")
    )


@dataclass
class EncoderConfig:
    """Semantic or evaluation encoder: architecture and self-supervised objective."""

    kind: str = field(
        default="conv",
        metadata=_doc("Architecture: 'conv' (group-norm conv stages) or 'residual' (MONAI residual units)."),
    )
    channels: list[int] = field(
        default_factory=lambda: [32, 64, 128, 128],
        metadata=_doc("Width of each stage; every stage after the first halves the resolution."),
    )
    embed_dim: int = field(
        default=128, metadata=_doc("Length of the embedding (the fingerprint has one per shard).")
    )
    objective: str = field(
        default="contrastive+reconstruction",
        metadata=_doc(
            "'contrastive+reconstruction' (NT-Xent between two views plus decoding the clean window from the "
            "embedding) or 'contrastive' (NT-Xent only)."
        ),
    )
    views: str = field(
        default="noise",
        metadata=_doc(
            "How two views of a window differ: 'noise' (Gaussian noise, shift, gain: learn to ignore "
            "noise) or 'geometric' (flips, 90-degree turns, shift, gain; no noise)."
        ),
    )
    window: int = field(
        default=64,
        metadata=_doc(
            "Side of the square training windows (the shard size of a 256x256 slice at K=16 is 64)."
        ),
    )
    jitter: int = field(
        default=4, metadata=_doc("Largest shift in pixels between the two views of a window.")
    )
    temperature: float = field(default=0.1, metadata=_doc("NT-Xent softmax temperature."))
    projection_dim: int = field(
        default=64, metadata=_doc("Width of the projection head the contrastive loss sees (discarded after).")
    )
    recon_size: int = field(
        default=16, metadata=_doc("Side of the downsampled clean window the reconstruction head predicts.")
    )
    recon_weight: float = field(
        default=20.0,
        metadata=_doc("Weight of the reconstruction term (its MSE is ~100x smaller than NT-Xent)."),
    )
    sigma_max: float = field(
        default=0.15,
        metadata=_doc("Largest Gaussian noise sigma of a 'noise' view (sampled from [0, sigma_max])."),
    )


@dataclass
class GeneratorConfig:
    """Hybrid U-Net generator G."""

    channels: list[int] = field(
        default_factory=lambda: [24, 48, 96, 192],
        metadata=_doc("Width of each level; the last is the attention bottleneck."),
    )
    unshuffle: int = field(
        default=2,
        metadata=_doc("Pixel-unshuffle factor before the first convolution (cheap full-resolution work)."),
    )
    attention_blocks: int | None = field(
        default=None,
        metadata=_doc(
            "Transformer blocks at the bottleneck (null = the variant's: 0 for unet-*, 2 for prosima-*)."
        ),
    )
    heads: int = field(default=4, metadata=_doc("Attention heads (must divide the bottleneck width)."))
    mlp_ratio: int = field(
        default=2, metadata=_doc("Transformer MLP width as a multiple of the bottleneck width.")
    )
    cond_channels: int = field(
        default=32, metadata=_doc("Width each shard fingerprint is projected to before the per-level FiLM.")
    )
    residual: bool = field(
        default=True, metadata=_doc("Predict the noise and subtract it from the input (residual learning).")
    )
    context: int = field(
        default=0,
        metadata=_doc(
            "Neighbouring slices on each side read as extra input channels (0 = 2-D; 1 = 2.5-D, three "
            "slices). Training and validation then need volumes (BraTS folders)."
        ),
    )


@dataclass
class LossConfig:
    """L = pixel + lambda1 * perceptual + lambda2 * semantic."""

    pixel: str = field(default="l1", metadata=_doc("Pixel loss: 'l1' or 'l2'."))
    lambda1: float | None = field(
        default=None,
        metadata=_doc("Weight of the perceptual loss (null = the variant's: 0 or default_lambda1)."),
    )
    lambda2: float | None = field(
        default=None,
        metadata=_doc("Weight of the semantic loss (null = the variant's: 0 or default_lambda2)."),
    )
    default_lambda1: float = field(
        default=0.05, metadata=_doc("lambda1 of the variants that use the perceptual loss.")
    )
    default_lambda2: float = field(
        default=1.0, metadata=_doc("lambda2 of the variants that use the semantic loss.")
    )
    aux_batch: int | None = field(
        default=None,
        metadata=_doc(
            "Training patches per batch that the perceptual and semantic terms see (null = all). Patches "
            "are drawn at random, so a few give the same expected gradient as all of them, and those "
            "terms (a frozen network forward and backward) cost as much as the generator itself."
        ),
    )
    perceptual_network: str = field(
        default="encoder",
        metadata=_doc(
            "'encoder' (frozen semantic encoder's feature maps) or a path to a local VGG-16 state dict file."
        ),
    )
    semantic_tile: int = field(
        default=64, metadata=_doc("Side of the tiles whose embeddings the semantic loss compares.")
    )


@dataclass
class FingerprintConfig:
    """Latent fingerprint z* the full model is conditioned on."""

    use: bool | None = field(
        default=None, metadata=_doc("Condition on fingerprints (null = the variant's: only 'full' does).")
    )
    k: int = field(default=16, metadata=_doc("GFT shards per slice; one int8 embedding each."))
    dropout: float = field(
        default=0.1,
        metadata=_doc(
            "Probability of training a sample without its fingerprint (keeps the model usable without z*)."
        ),
    )


@dataclass
class OptimConfig:
    """Adam and its learning-rate schedule."""

    lr: float = field(default=1e-4, metadata=_doc("Peak learning rate (paper: 1e-4)."))
    betas: list[float] = field(
        default_factory=lambda: [0.9, 0.999], metadata=_doc("Adam betas (paper: 0.9, 0.999).")
    )
    weight_decay: float = field(default=0.0, metadata=_doc("Adam weight decay."))
    schedule: str = field(
        default="constant", metadata=_doc("'constant' or 'cosine' (decays to min_lr at the last step).")
    )
    warmup_steps: int = field(default=0, metadata=_doc("Linear warm-up steps from lr / 10."))
    min_lr: float = field(default=1e-6, metadata=_doc("Final learning rate of the cosine schedule."))
    grad_clip: float | None = field(
        default=1.0, metadata=_doc("Clip the gradient norm to this (null = no clipping).")
    )


@dataclass
class TrainLoopConfig:
    """The loop: steps, batches, noise, validation and checkpoints."""

    steps: int = field(default=1000, metadata=_doc("Optimiser steps in total (resume continues up to this)."))
    batch_size: int = field(default=16, metadata=_doc("Patches (restore) or windows (encoder) per step."))
    patch: int = field(default=128, metadata=_doc("Side of the random training patches (restore)."))
    sigma_min: float = field(
        default=0.0,
        metadata=_doc("Smallest training noise sigma (blind: sampled per patch from [min, max])."),
    )
    sigma_max: float = field(default=0.12, metadata=_doc("Largest training noise sigma."))
    val_every: int = field(default=500, metadata=_doc("Validate every this many steps (and at the end)."))
    val_sigmas: list[float] = field(
        default_factory=lambda: [0.05, 0.1], metadata=_doc("Noise sigmas of the validation (restore).")
    )
    val_seed: int = field(
        default=1234, metadata=_doc("Seed of the validation noise and windows (fixed, so runs compare).")
    )
    checkpoint_every: int = field(default=500, metadata=_doc("Save the checkpoint every this many steps."))
    checkpoint_minutes: float = field(
        default=5.0, metadata=_doc("Also save when this many minutes passed since the last save.")
    )
    log_every: int = field(
        default=50, metadata=_doc("Append training losses to metrics.jsonl every this many steps.")
    )
    precision: str = field(
        default="fp32",
        metadata=_doc(
            "Training arithmetic: 'fp32', or 'bf16' (CPU autocast: ~2.4x faster steps on AVX512-BF16; "
            "validation, checkpoints and shipped weights stay float32/float16)."
        ),
    )
    channels_last: bool = field(
        default=False, metadata=_doc("Train in channels-last memory format (faster beside bf16 on CPUs).")
    )


@dataclass
class SiteConfig:
    """One site of a federated run and the subjects only it holds."""

    name: str = field(default="site-1", metadata=_doc("Site name (a client of the federation)."))
    subjects: list[str] = field(
        default_factory=list, metadata=_doc("Subjects held by this site (never shared with another site).")
    )


@dataclass
class FederatedConfig:
    """Protocol 1: FedAvg rounds over sites (``prosima train-federated``); restore task only."""

    rounds: int = field(default=5, metadata=_doc("FedAvg rounds; each round's global weights are anchored."))
    local_steps: int = field(
        default=200, metadata=_doc("Optimiser steps each site takes per round (on its own subjects).")
    )
    sites: list[SiteConfig] = field(
        default_factory=list,
        metadata=_doc("The sites; empty = one site per training subject (site-1, site-2, ...)."),
    )


@dataclass
class Config:
    """One training run."""

    task: str = field(
        default="restore", metadata=_doc("'encoder' (self-supervised encoder) or 'restore' (generator).")
    )
    name: str | None = field(
        default=None,
        metadata=_doc(
            "Run name, the model's name in checkpoints and cards (null = the variant's method name, "
            "e.g. prosima-full, or 'encoder')."
        ),
    )
    variant: str | None = field(
        default=None, metadata=_doc("Restore only: pixel | perceptual | semantic | full | no-fingerprint.")
    )
    seed: int = field(default=0, metadata=_doc("Seed of initialisation and of the training sampler."))
    threads: int = field(default=2, metadata=_doc("torch CPU threads."))
    out_dir: str | None = field(
        default=None, metadata=_doc("Where checkpoints, config and metrics go (null = runs/<name>).")
    )
    init: str | None = field(
        default=None,
        metadata=_doc("Start from these weights: a checkpoint path or 'pretrained:NAME' (null = random)."),
    )
    semantic_encoder: str | None = field(
        default=None,
        metadata=_doc(
            "Restore only: frozen encoder for fingerprints and the semantic/perceptual losses: a checkpoint "
            "path or "
            "'pretrained:NAME'; null = a randomly initialised encoder (tests only)."
        ),
    )
    data: DataConfig = field(default_factory=DataConfig, metadata=_doc("Data."))
    encoder: EncoderConfig = field(
        default_factory=EncoderConfig,
        metadata=_doc("Encoder architecture and objective (task encoder; or the random encoder)."),
    )
    generator: GeneratorConfig = field(
        default_factory=GeneratorConfig, metadata=_doc("Generator architecture (task restore).")
    )
    loss: LossConfig = field(default_factory=LossConfig, metadata=_doc("Restoration losses."))
    fingerprint: FingerprintConfig = field(
        default_factory=FingerprintConfig, metadata=_doc("Fingerprint conditioning.")
    )
    optim: OptimConfig = field(default_factory=OptimConfig, metadata=_doc("Optimiser."))
    train: TrainLoopConfig = field(default_factory=TrainLoopConfig, metadata=_doc("Training loop."))
    federated: FederatedConfig = field(
        default_factory=FederatedConfig, metadata=_doc("Federated training (Protocol 1).")
    )

    @property
    def output_dir(self) -> Path:
        return Path(self.out_dir) if self.out_dir else Path("runs") / str(self.name)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _convert(tp: Any, value: Any, where: str) -> Any:
    """Check and coerce ``value`` to the annotated type ``tp``."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise ConfigError(f"{where}: must not be null")
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _convert(a, value, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0])
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return _build(tp, value, where)
    if origin is list:
        (item,) = typing.get_args(tp)
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return [_convert(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{where}: unsupported type {tp}")  # pragma: no cover


def _build(cls: type, values: dict[str, Any], where: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(f"{where or 'config'}: unknown field(s) {unknown}; known: {sorted(names)}")
    kwargs = {k: _convert(hints[k], v, f"{where}.{k}" if where else k) for k, v in values.items()}
    return cls(**kwargs)


def config_from_dict(values: dict[str, Any]) -> Config:
    """A validated, resolved ``Config`` from a plain mapping (as read from YAML)."""
    return resolve(_build(Config, values or {}))


def _yaml() -> Any:
    import yaml  # PyYAML

    return yaml


def apply_override(values: dict[str, Any], assignment: str) -> None:
    """Apply ``section.field=VALUE`` (VALUE parsed as YAML) to a nested mapping in place."""
    if "=" not in assignment:
        raise ConfigError(f"override {assignment!r} must look like section.field=value")
    key, raw = assignment.split("=", 1)
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise ConfigError(f"override {assignment!r} names no field")
    node = values
    for p in parts[:-1]:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {assignment!r}: {p} is not a section")
    node[parts[-1]] = _yaml().safe_load(raw) if raw.strip() else None


def load_config(path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Read a YAML config (or start from defaults when ``path`` is None), apply overrides, resolve."""
    values: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: no such config file")
        loaded = _yaml().safe_load(path.read_text())
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the top level must be a mapping")
        values = loaded or {}
    for o in overrides:
        apply_override(values, o)
    return config_from_dict(values)


def resolve(cfg: Config) -> Config:
    """Check the values and fill what the variant decides; returns a new ``Config``."""
    cfg = dataclasses.replace(cfg)
    if cfg.task not in TASKS:
        raise ConfigError(f"task must be one of {TASKS}, got {cfg.task!r}")
    if cfg.task == "restore":
        if cfg.variant is None:
            raise ConfigError(f"task 'restore' needs a variant: one of {sorted(VARIANTS)}")
        if cfg.variant not in VARIANTS:
            raise ConfigError(f"unknown variant {cfg.variant!r}; choose from {sorted(VARIANTS)}")
        v = VARIANTS[cfg.variant]
        loss = dataclasses.replace(cfg.loss)
        if loss.lambda1 is None:
            loss.lambda1 = loss.default_lambda1 if v["perceptual"] else 0.0
        if loss.lambda2 is None:
            loss.lambda2 = loss.default_lambda2 if v["semantic"] else 0.0
        gen = dataclasses.replace(cfg.generator)
        if gen.attention_blocks is None:
            gen.attention_blocks = v["attention_blocks"]
        fp = dataclasses.replace(cfg.fingerprint)
        if fp.use is None:
            fp.use = v["fingerprint"]
        cfg.loss, cfg.generator, cfg.fingerprint = loss, gen, fp
        cfg.name = cfg.name or VARIANT_METHOD[cfg.variant]
    elif cfg.variant is not None:
        raise ConfigError("variant applies to task 'restore' only")
    else:
        cfg.name = cfg.name or "encoder"
    _check(cfg)
    return cfg


def _check(cfg: Config) -> None:
    t = cfg.train
    if t.steps < 0 or t.batch_size < 1 or t.patch < 8:
        raise ConfigError("train.steps must be >= 0, train.batch_size >= 1 and train.patch >= 8")
    if not 0.0 <= t.sigma_min <= t.sigma_max:
        raise ConfigError("need 0 <= train.sigma_min <= train.sigma_max")
    if min(t.val_every, t.checkpoint_every, t.log_every) < 1:
        raise ConfigError("train.val_every, checkpoint_every and log_every must be >= 1")
    if cfg.loss.aux_batch is not None and not 1 <= cfg.loss.aux_batch <= cfg.train.batch_size:
        raise ConfigError("loss.aux_batch must lie between 1 and train.batch_size (or be null)")
    if cfg.train.precision not in PRECISIONS:
        raise ConfigError(f"train.precision must be one of {PRECISIONS}, got {cfg.train.precision!r}")
    if cfg.loss.pixel not in ("l1", "l2"):
        raise ConfigError(f"loss.pixel must be 'l1' or 'l2', got {cfg.loss.pixel!r}")
    if cfg.optim.schedule not in ("constant", "cosine"):
        raise ConfigError(f"optim.schedule must be 'constant' or 'cosine', got {cfg.optim.schedule!r}")
    if len(cfg.optim.betas) != 2:
        raise ConfigError("optim.betas must hold two numbers")
    if cfg.encoder.kind not in ("conv", "residual"):
        raise ConfigError(f"encoder.kind must be 'conv' or 'residual', got {cfg.encoder.kind!r}")
    if cfg.encoder.objective not in ("contrastive", "contrastive+reconstruction"):
        raise ConfigError(f"unknown encoder.objective {cfg.encoder.objective!r}")
    if cfg.encoder.views not in ("noise", "geometric"):
        raise ConfigError(f"encoder.views must be 'noise' or 'geometric', got {cfg.encoder.views!r}")
    if not 0.0 <= cfg.fingerprint.dropout < 1.0:
        raise ConfigError("fingerprint.dropout must lie in [0, 1)")
    if cfg.threads < 1:
        raise ConfigError("threads must be >= 1")
    fed = cfg.federated
    if fed.rounds < 1 or fed.local_steps < 1:
        raise ConfigError("federated.rounds and federated.local_steps must be >= 1")
    names = [site.name for site in fed.sites]
    if len(set(names)) != len(names):
        raise ConfigError(f"federated.sites: site names must differ, got {names}")
    held: dict[str, str] = {}
    for site in fed.sites:
        if not site.subjects:
            raise ConfigError(f"federated.sites: {site.name} holds no subjects")
        for subject in site.subjects:
            if cfg.data.root is not None and subject in cfg.data.val_subjects:
                raise ConfigError(f"federated.sites: {site.name} holds {subject}, a validation subject")
            if subject in held and cfg.data.root is not None:
                raise ConfigError(
                    f"federated.sites: {subject} is held by both {held[subject]} and {site.name}"
                )
            held[subject] = site.name


def undocumented_fields() -> list[str]:
    """Every config field without documentation (should be empty)."""
    missing = []
    for cls in (
        Config,
        DataConfig,
        EncoderConfig,
        GeneratorConfig,
        LossConfig,
        FingerprintConfig,
        OptimConfig,
        TrainLoopConfig,
        SiteConfig,
        FederatedConfig,
    ):
        missing += [f"{cls.__name__}.{f.name}" for f in dataclasses.fields(cls) if not f.metadata.get("doc")]
    return missing


def dump_yaml(cfg: Config) -> str:
    """The resolved config as YAML (what is saved beside a checkpoint)."""
    return _yaml().safe_dump(cfg.to_dict(), sort_keys=False)
