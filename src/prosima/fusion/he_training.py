"""Encrypted training of ``FusionNet``'s output layer (``out``: C -> 1 plus bias) on a site's data.

What runs where. The site encrypts, per chunk of pixels (all pairs' pixels concatenated), the shifted
sources the stem reads (as for inference) and the target image, and sends them once. On ciphertexts
the node computes the hidden features ``h_c`` (the inference pass up to the second activation, once),
and at every step, for its plaintext weights ``v, b``, the residual ``r = sum_c v_c h_c + b +
mean(sources) - T`` pixelwise (scaled by 2/P, P the pixel count), then the aggregates ``g_c =
sum_pixels r * h_c`` and ``g_b = sum_pixels r`` (``CKKSVector.sum``: rotations, hence Galois keys
in the training context). The site decrypts only these C + 1 numbers per step, which are exactly the
gradient of the mean squared error ``mean((out + mean - T)**2)``; the node updates ``v, b`` in
plaintext by gradient descent. Features, residuals and targets are never decrypted.

Depth: stem 1, act1 + mix 2, ``h = z * (1 + a z)`` 1, the residual's products 1, ``r * h`` 1: 6
rescalings, so ``TRAINING_PARAMS`` carries 6 middle primes. ``plain_fit_output_layer`` is the same
gradient descent in float64, to measure the encryption's gap.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from prosima.fusion.he import (
    HEParams,
    NodeContext,
    SiteKeys,
    _as_image,
    _check_model,
    _Enc,
    _Evaluator,
    _first_layers,
    _mix,
    _np,
    _pack,
    _ts,
    _unpack_chunks,
    check_sources,
    chunk_bounds,
    load_vectors,
    make_context,
    peak_rss_mb,
    serialize_vectors,
    tap_rows,
)
from prosima.fusion.network import FusionNet, tap_offsets

if TYPE_CHECKING:
    import tenseal as ts

TRAINING_DEPTH = 6
# Six levels with 40-bit scale at N=16384: 60 + 6*40 + 60 = 360 <= 438 bits (128-bit security). The
# 60-bit first prime leaves 2**19 of headroom for the aggregates.
TRAINING_PARAMS = HEParams(16384, (60, 40, 40, 40, 40, 40, 40, 60), 40)


@dataclass
class OutputLayer:
    """The ``out`` layer's weights (C,) and bias, in float64."""

    weight: np.ndarray
    bias: float

    @classmethod
    def of(cls, model: FusionNet) -> OutputLayer:
        return cls(_np(model.out.weight)[0, :, 0, 0].copy(), float(_np(model.out.bias)[0]))

    @torch.no_grad()
    def apply_to(self, model: FusionNet) -> FusionNet:
        """Write these weights into ``model.out`` (in place) and return the model."""
        model.out.weight.copy_(
            torch.as_tensor(self.weight, dtype=model.out.weight.dtype).view_as(model.out.weight)
        )
        model.out.bias.fill_(self.bias)
        return model


@dataclass
class FitStep:
    """One gradient step: the MSE gradient used and the weights after it (``loss``: the MSE before
    the step, known to the plaintext reference only)."""

    step: int
    grad: np.ndarray
    grad_bias: float
    weight: np.ndarray
    bias: float
    loss: float | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["grad"], d["weight"] = self.grad.tolist(), self.weight.tolist()
        return d


def intensity_target(a: object, b: object) -> np.ndarray:
    """The fusion loss's intensity target: the pixelwise maximum of the two sources."""
    a_, b_ = check_sources(a, b)
    return np.maximum(a_, b_)


def _training_set(
    model: object, pairs: Sequence[tuple[object, object]], targets: Sequence[object] | None
) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[np.ndarray]]:
    _check_model(model)
    if len(pairs) == 0:
        raise ValueError("no training pairs given")
    srcs = [check_sources(a, b) for a, b in pairs]
    if targets is None:
        tgts = [np.maximum(a, b) for a, b in srcs]
    else:
        if len(targets) != len(srcs):
            raise ValueError(f"{len(srcs)} pairs but {len(targets)} targets")
        tgts = [_as_image(t, f"target {i}", unit=False) for i, t in enumerate(targets)]
        for i, ((a, _), t) in enumerate(zip(srcs, tgts, strict=True)):
            if t.shape != a.shape:
                raise ValueError(f"target {i} has shape {t.shape}, its sources {a.shape}")
    return srcs, tgts


def _check_schedule(steps: int, lr: float) -> None:
    if int(steps) != steps or steps < 0:
        raise ValueError(f"steps must be a non-negative integer, got {steps}")
    if not (math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive finite number, got {lr}")


# ------------------------------------------------------------------------------------------ site
@dataclass
class EncryptedTrainingSet:
    """Per chunk of the concatenated pixels: 2 * T tap ciphertexts (as ``EncryptedPair``), then the
    target's."""

    params: HEParams
    taps: tuple[tuple[int, int], ...]
    n_pixels: int
    chunks: list[list[ts.CKKSVector]]

    @property
    def n_ciphertexts(self) -> int:
        return sum(len(c) for c in self.chunks)

    def serialize(self) -> bytes:
        header = {
            "kind": "training",
            "params": self.params.to_dict(),
            "taps": [list(t) for t in self.taps],
            "n_pixels": self.n_pixels,
            "per_chunk": 2 * len(self.taps) + 1,
        }
        return _pack(header, [v.serialize() for c in self.chunks for v in c])

    @classmethod
    def from_bytes(cls, data: bytes, node: NodeContext) -> EncryptedTrainingSet:
        header, params, taps, chunks = _unpack_chunks(data, "training", node)
        return cls(params, taps, int(header["n_pixels"]), chunks)


def encrypt_training_set(
    keys: SiteKeys,
    model: FusionNet,
    pairs: Sequence[tuple[object, object]],
    targets: Sequence[object] | None = None,
) -> EncryptedTrainingSet:
    """Encrypt all pairs' shifted sources and targets (default: ``intensity_target``), their pixels
    concatenated and cut into chunks of ``slot_count``."""
    srcs, tgts = _training_set(model, pairs, targets)
    taps = tuple(tap_offsets(model.config))
    cols = np.concatenate(
        [
            np.vstack([tap_rows(a, b, taps, 0, a.size), t.reshape(1, -1)])
            for (a, b), t in zip(srcs, tgts, strict=True)
        ],
        axis=1,
    )
    ts_ = _ts()
    chunks = [
        [ts_.ckks_vector(keys.context, row.tolist()) for row in cols[:, s:e]]
        for s, e in chunk_bounds(cols.shape[1], keys.params.slot_count)
    ]
    return EncryptedTrainingSet(keys.params, taps, cols.shape[1], chunks)


def decrypt_aggregates(keys: SiteKeys, vectors: Sequence[ts.CKKSVector]) -> np.ndarray:
    """The site decrypts the node's aggregate ciphertexts: one number each, nothing else."""
    sk = keys.context.secret_key()
    out = []
    for v in vectors:
        if v.size() != 1:
            raise ValueError(
                f"refusing to decrypt a {v.size()}-slot vector: only aggregates (1 slot) are released"
            )
        out.append(v.decrypt(sk)[0])
    return np.asarray(out, dtype=np.float64)


# ------------------------------------------------------------------------------------------ node
class OutputLayerTrainer:
    """The node's side: encrypted features once, then per step the encrypted gradient aggregates."""

    @torch.no_grad()
    def __init__(self, model: FusionNet, data: EncryptedTrainingSet) -> None:
        _check_model(model)
        taps = tuple(tap_offsets(model.config))
        if tuple(data.taps) != taps:
            raise ValueError("the training ciphertexts were made for another stem than this model's")
        data.params.require_depth(TRAINING_DEPTH)
        if any(len(c) != 2 * len(taps) + 1 for c in data.chunks) or not data.chunks:
            raise ValueError(f"each chunk must hold {2 * len(taps) + 1} ciphertexts (taps, then the target)")
        self.model, self.n_pixels = model, data.n_pixels
        self.ev = ev = _Evaluator(data.params, data.chunks[0][0].context())
        a2 = _np(model.act2.a)
        self.features: list[list[_Enc]] = []
        self.offsets: list[_Enc] = []
        for chunk in data.chunks:
            inputs = [_Enc(v) for v in chunk[:-1]]
            centre = taps.index((0, 0))
            mean_minus_target = [
                (0.5, inputs[centre]),
                (0.5, inputs[len(taps) + centre]),
                (-1.0, _Enc(chunk[-1])),
            ]
            self.offsets.append(ev.lincomb(mean_minus_target))
            x, sq = _first_layers(ev, model, inputs)
            z = _mix(ev, model, x, sq)
            u = _mix(ev, model, x, sq, gain=a2, offset=1.0)  # 1 + a2 * z, at z's depth
            self.features.append([ev.mul(zi, ui) for zi, ui in zip(z, u, strict=True)])  # z + a2 z^2

    def gradient_ciphertexts(self, layer: OutputLayer) -> tuple[list[ts.CKKSVector], np.ndarray]:
        """C + 1 one-slot ciphertexts (sums over all pixels of ``r h_c``, then of ``r``) and the
        factors turning the site's decrypted numbers into the MSE gradient: 2 / P, and the CKKS scale
        bookkeeping. (The 2 / P stays out of the ciphertexts: rotations add an absolute error of about
        1e-5, small only next to unscaled sums.)"""
        ev = self.ev
        prods: list[list[_Enc]] = []
        for h, off in zip(self.features, self.offsets, strict=True):
            r = ev.add(ev.lincomb([(v, hc) for v, hc in zip(layer.weight, h, strict=True)], layer.bias), off)
            prods.append([ev.mul(r, hc) for hc in h] + [r])
        n_out = len(prods[0])
        vectors, factors = [], []
        for j in range(n_out):
            vectors.append(_sum_all([p[j].vec for p in prods]))
            factors.append(2.0 / self.n_pixels / prods[0][j].rho)
        return vectors, np.asarray(factors)

    @staticmethod
    def gradient(decrypted: np.ndarray, factors: np.ndarray) -> tuple[np.ndarray, float]:
        """The MSE gradient (weights, bias) from the site's decrypted aggregates."""
        g = np.asarray(decrypted, np.float64) * factors
        return g[:-1], float(g[-1])


def _sum_all(vectors: list[Any]) -> Any:
    """Sum of every slot of every vector: equal-size vectors add first, one rotation sum each size."""
    by_size: dict[int, Any] = {}
    for v in vectors:
        if v.size() in by_size:
            by_size[v.size()] = by_size[v.size()] + v
        else:
            by_size[v.size()] = v
    total = None
    for v in by_size.values():
        s = v.sum()
        total = s if total is None else total + s
    return total


@torch.no_grad()
def he_fit_output_layer(
    model: FusionNet,
    pairs: Sequence[tuple[object, object]],
    targets: Sequence[object] | None = None,
    steps: int = 10,
    lr: float = 0.5,
    params: HEParams = TRAINING_PARAMS,
    *,
    keys: SiteKeys | None = None,
    serialize_context: bool = True,
) -> tuple[OutputLayer, list[FitStep], dict[str, Any]]:
    """Train ``model.out`` by gradient descent on the MSE to ``targets`` (default: ``intensity_target``)
    with the site's data encrypted throughout; only C + 1 aggregate numbers are decrypted per step.
    ``model`` is not modified (``OutputLayer.apply_to`` does that). ``serialize_context=False`` hands
    the node an in-memory public copy instead of compressing the Galois keys (saves seconds in tests;
    ``bytes_context`` is then 0)."""
    srcs, tgts = _training_set(model, pairs, targets)
    _check_schedule(steps, lr)
    params.require_depth(TRAINING_DEPTH)
    if keys is not None and keys.params != params:
        raise ValueError(f"the keys were made for {keys.params}, not {params}")
    stats: dict[str, Any] = {"params": params.to_dict(), "security_bits": params.security_bits}
    t0 = time.perf_counter()
    keys = keys or make_context(params, galois=True)
    if not keys.context.has_galois_keys():
        raise ValueError("training needs a context with Galois keys: make_context(params, galois=True)")
    if serialize_context:
        ctx_bytes = keys.public_bytes()
        node = NodeContext.from_bytes(ctx_bytes)
    else:
        ctx_bytes, node = b"", keys.node_context(serialize=False)
    t1 = time.perf_counter()
    up = encrypt_training_set(
        keys, model, list(zip([a for a, _ in srcs], [b for _, b in srcs], strict=True)), tgts
    )
    up_bytes = up.serialize()
    n_up = up.n_ciphertexts
    del up
    t2 = time.perf_counter()
    trainer = OutputLayerTrainer(model, EncryptedTrainingSet.from_bytes(up_bytes, node))
    t3 = time.perf_counter()
    layer = OutputLayer.of(model)
    history: list[FitStep] = []
    t_node = t_site = 0.0
    bytes_down = 0
    for step in range(int(steps)):
        ta = time.perf_counter()
        vecs, factors = trainer.gradient_ciphertexts(layer)
        down = serialize_vectors(vecs)
        tb = time.perf_counter()
        numbers = decrypt_aggregates(keys, load_vectors(down, keys.context))
        tc = time.perf_counter()
        grad, grad_b = trainer.gradient(numbers, factors)
        layer = OutputLayer(layer.weight - lr * grad, layer.bias - lr * grad_b)
        history.append(FitStep(step, grad, grad_b, layer.weight.copy(), layer.bias))
        bytes_down += len(down)
        t_node += tb - ta + time.perf_counter() - tc
        t_site += tc - tb
    stats.update(
        n_pixels=trainer.n_pixels,
        ciphertexts_up=n_up,
        bytes_context=len(ctx_bytes),
        bytes_up=len(up_bytes),
        bytes_down=bytes_down,
        numbers_decrypted=int(steps) * (len(layer.weight) + 1),
        seconds_keygen=t1 - t0,
        seconds_encrypt=t2 - t1,
        seconds_features=t3 - t2,
        seconds_steps_node=t_node,
        seconds_steps_decrypt=t_site,
        peak_rss_mb=peak_rss_mb(),
    )
    return layer, history, stats


# ------------------------------------------------------------------------------------- reference
@torch.no_grad()
def _plain_parts(
    model: FusionNet, srcs: list[tuple[np.ndarray, np.ndarray]], tgts: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Hidden features (C, P) and ``mean - T`` (P,) of all pixels, float64."""
    ref = FusionNet(model.config).double()
    ref.load_state_dict({k: v.double() for k, v in model.state_dict().items()})
    hs, offs = [], []
    for (a, b), t in zip(srcs, tgts, strict=True):
        x = torch.from_numpy(np.stack([a, b]))[None]
        hs.append(ref.hidden(x)[0].reshape(ref.config.hidden, -1).numpy())
        offs.append((0.5 * (a + b) - t).ravel())
    return np.concatenate(hs, axis=1), np.concatenate(offs)


def output_layer_loss(
    model: FusionNet,
    pairs: Sequence[tuple[object, object]],
    targets: Sequence[object] | None,
    layer: OutputLayer,
) -> float:
    """Plaintext MSE of ``out + mean(sources)`` to the targets with ``layer``'s weights."""
    srcs, tgts = _training_set(model, pairs, targets)
    h, off = _plain_parts(model, srcs, tgts)
    return float(np.mean((layer.weight @ h + layer.bias + off) ** 2))


def plain_fit_output_layer(
    model: FusionNet,
    pairs: Sequence[tuple[object, object]],
    targets: Sequence[object] | None = None,
    steps: int = 10,
    lr: float = 0.5,
) -> tuple[OutputLayer, list[FitStep]]:
    """The same gradient steps as ``he_fit_output_layer`` in float64 plaintext (with the loss)."""
    srcs, tgts = _training_set(model, pairs, targets)
    _check_schedule(steps, lr)
    h, off = _plain_parts(model, srcs, tgts)
    k = 2.0 / h.shape[1]
    layer = OutputLayer.of(model)
    history = []
    for step in range(int(steps)):
        r = layer.weight @ h + layer.bias + off
        grad, grad_b = k * (h @ r), k * float(r.sum())
        loss = float(np.mean(r**2))
        layer = OutputLayer(layer.weight - lr * grad, layer.bias - lr * grad_b)
        history.append(FitStep(step, grad, grad_b, layer.weight.copy(), layer.bias, loss))
    return layer, history


__all__ = [
    "TRAINING_DEPTH",
    "TRAINING_PARAMS",
    "EncryptedTrainingSet",
    "FitStep",
    "OutputLayer",
    "OutputLayerTrainer",
    "decrypt_aggregates",
    "encrypt_training_set",
    "he_fit_output_layer",
    "intensity_target",
    "output_layer_loss",
    "plain_fit_output_layer",
]
