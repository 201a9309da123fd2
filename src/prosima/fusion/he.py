"""Encrypted (CKKS, TenSEAL) inference of ``FusionNet``: a site's sources never leave it unencrypted.

Roles. The *site* holds the two source images and the secret key (``make_context``); it encrypts,
for every stem tap and each source, the replicate-padded shifted image, flattened (row-major) and
cut into chunks of ``slot_count`` pixels: pixel-parallel packing, one slot per pixel
(``encrypt_sources``). The *node* holds the model and only the public context (``NodeContext``: no
secret key, so it cannot decrypt anything) and computes the fused image on ciphertexts
(``encrypted_forward``) with ciphertext-plaintext-scalar products, additions and ciphertext squares
only: the stem's taps are its only neighbourhood access and the site already encrypted each shifted
copy, so no rotation is needed. The site decrypts, reassembles and clamps (``decrypt_fused``).
``he_fuse`` runs the whole round trip chunk by chunk (bounded memory, real serialisation to measure
what travels).

Depth (rescalings): stem 1; first QuadAct folded into ``mix`` (``sum_j W_ij x_j + sum_j (W_ij a_j)
x_j**2``: square 1 + product 1); the second likewise into ``out``: 5 in all, so
``INFERENCE_PARAMS`` carries 5 middle primes. Two implementation details keep CKKS's error small:

* TenSEAL relabels a ciphertext's scale to the global scale after each rescale, although the true
  scale is ``scale**2 / q`` for the prime ``q`` just dropped (off by up to 4e-4 for 30-bit primes).
  The node tracks that ratio (``_Enc.rho``) for every ciphertext and folds its inverse into the
  next plaintext weight, so every linear output is exact (no drift through the layers).
* Linear layers are evaluated lazily: products are summed at scale ``scale**2`` without rescaling
  and the sum is rescaled once (by a product with the exactly representable ``1/scale``): one
  rescale per output channel instead of one per term (2.6x faster here, and less rounding noise).
"""

from __future__ import annotations

import json
import resource
import struct
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from prosima.fusion.network import FusionNet, stem_tap_weights, tap_offsets
from prosima.optional import require

if TYPE_CHECKING:
    import tenseal as ts

# Largest total coefficient-modulus bits per ring degree for each classical security level, from the
# HomomorphicEncryption.org standard's tables (ternary secret; the values SEAL enforces).
HE_STANDARD_MAX_BITS: dict[int, dict[int, int]] = {
    128: {1024: 27, 2048: 54, 4096: 109, 8192: 218, 16384: 438, 32768: 881},
    192: {1024: 19, 2048: 37, 4096: 75, 8192: 152, 16384: 305, 32768: 611},
    256: {1024: 14, 2048: 29, 4096: 58, 8192: 118, 16384: 237, 32768: 476},
}
INFERENCE_DEPTH = 5  # rescalings of an encrypted forward pass
_MAGIC = b"PRSHE1"


def _ts() -> Any:
    return require("tenseal", "he")


@dataclass(frozen=True)
class HEParams:
    """CKKS parameters: ring degree N (N/2 slots), coefficient-modulus prime sizes (first prime, the
    middle primes consumed one per rescale, the special key-switching prime) and the scale 2**bits.

    The middle primes must equal the scale's bits; the first must exceed it (it holds the result:
    values up to about ``2**(first - scale - 1)``). ``security_bits`` follows the HE standard."""

    poly_modulus_degree: int = 8192
    coeff_mod_bit_sizes: tuple[int, ...] = (34, 30, 30, 30, 30, 30, 34)
    scale_bits: int = 30

    def __post_init__(self) -> None:
        n, bits, s = (
            self.poly_modulus_degree,
            tuple(int(b) for b in self.coeff_mod_bit_sizes),
            self.scale_bits,
        )
        object.__setattr__(self, "coeff_mod_bit_sizes", bits)
        if n not in HE_STANDARD_MAX_BITS[128]:
            raise ValueError(
                f"poly_modulus_degree must be one of {sorted(HE_STANDARD_MAX_BITS[128])}, got {n}"
            )
        if len(bits) < 3 or any(not 17 <= b <= 60 for b in bits):
            raise ValueError(f"coeff_mod_bit_sizes needs >= 3 primes of 17..60 bits, got {bits}")
        if any(b != s for b in bits[1:-1]):
            raise ValueError(f"the middle primes must all have scale_bits={s} bits, got {bits}")
        if bits[0] <= s or bits[-1] < max(bits[1:-1]):
            raise ValueError(
                f"the first prime must exceed the scale and the last match the middle ones: {bits}"
            )
        if self.security_bits < 128:
            limit = HE_STANDARD_MAX_BITS[128][n]
            raise ValueError(
                f"{sum(bits)} modulus bits exceed the 128-bit security bound {limit} for N={n} (HE standard)"
            )

    @property
    def total_bits(self) -> int:
        return sum(self.coeff_mod_bit_sizes)

    @property
    def depth(self) -> int:
        """How many rescalings (multiplicative levels) a fresh ciphertext affords."""
        return len(self.coeff_mod_bit_sizes) - 2

    @property
    def slot_count(self) -> int:
        return self.poly_modulus_degree // 2

    @property
    def global_scale(self) -> float:
        return float(2**self.scale_bits)

    @property
    def security_bits(self) -> int:
        """The highest classical security level (128/192/256) the HE standard grants; 0 if none."""
        ok = [
            lvl
            for lvl, table in HE_STANDARD_MAX_BITS.items()
            if self.total_bits <= table[self.poly_modulus_degree]
        ]
        return max(ok, default=0)

    def data_primes(self) -> tuple[int, ...]:
        """The primes SEAL picks for the chain (special prime excluded), first one first."""
        return _primes(self.poly_modulus_degree, self.coeff_mod_bit_sizes)[:-1]

    def require_depth(self, needed: int) -> None:
        if self.depth < needed:
            raise ValueError(f"parameters afford {self.depth} rescalings but the computation needs {needed}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["coeff_mod_bit_sizes"] = list(self.coeff_mod_bit_sizes)
        d.update(total_bits=self.total_bits, depth=self.depth, security_bits=self.security_bits)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> HEParams:
        return cls(int(d["poly_modulus_degree"]), tuple(d["coeff_mod_bit_sizes"]), int(d["scale_bits"]))


@lru_cache(maxsize=16)
def _primes(n: int, bits: tuple[int, ...]) -> tuple[int, ...]:
    sealapi = require("tenseal.sealapi", "he")
    return tuple(int(m.value()) for m in sealapi.CoeffModulus.Create(n, list(bits)))


# N=8192 is the smallest ring with room for 5 levels at 128-bit security (<= 218 bits): 34 + 5*30 +
# 34 = 218 bits. 30-bit scale: fresh-encryption error ~1e-6, far below 8-bit display precision.
INFERENCE_PARAMS = HEParams(8192, (34, 30, 30, 30, 30, 30, 34), 30)


# ----------------------------------------------------------------------------------------- contexts
@dataclass
class SiteKeys:
    """The site's TenSEAL context: parameters, secret key, public, relinearisation (and, for
    training, Galois) keys. It never leaves the site; ``public_bytes`` is what the node gets."""

    params: HEParams
    context: ts.Context
    symmetric: bool = False

    def public_bytes(self) -> bytes:
        """The context without its secret key (public, relinearisation and any Galois keys)."""
        ctx = self.context.serialize(
            save_public_key=not self.symmetric,
            save_secret_key=False,
            save_galois_keys=self.context.has_galois_keys(),
            save_relin_keys=True,
        )
        return _pack({"kind": "context", "params": self.params.to_dict()}, [ctx])

    def node_context(self, *, serialize: bool = True) -> NodeContext:
        """The node's view: loaded from ``public_bytes`` (``serialize=False``: an in-memory public
        copy, the same keys without compressing them, which saves seconds for large Galois keys)."""
        if serialize:
            return NodeContext.from_bytes(self.public_bytes())
        ctx = self.context.copy()
        ctx.make_context_public()
        return NodeContext(self.params, ctx)


@dataclass
class NodeContext:
    """The node's context: the parameters and the public TenSEAL context (no secret key)."""

    params: HEParams
    context: ts.Context

    @classmethod
    def from_bytes(cls, data: bytes) -> NodeContext:
        header, blobs = _unpack(data, "context")
        ctx = _ts().context_from(blobs[0])
        if ctx.has_secret_key():
            raise ValueError("the context handed to the node holds the secret key; send public_bytes()")
        return cls(HEParams.from_dict(header["params"]), ctx)


def make_context(
    params: HEParams = INFERENCE_PARAMS, *, galois: bool = False, symmetric: bool = False
) -> SiteKeys:
    """Generate the site's keys for ``params`` (Galois keys only when ``galois``: training's sums).
    ``symmetric``: the site encrypts with its secret key (about 2x faster, same ciphertext size) and
    no public key exists, so the node cannot encrypt anything itself (it never needs to)."""
    ts_ = _ts()
    kind = ts_.ENCRYPTION_TYPE.SYMMETRIC if symmetric else ts_.ENCRYPTION_TYPE.ASYMMETRIC
    ctx = ts_.context(
        ts_.SCHEME_TYPE.CKKS,
        params.poly_modulus_degree,
        coeff_mod_bit_sizes=list(params.coeff_mod_bit_sizes),
        encryption_type=kind,
    )
    ctx.global_scale = params.global_scale
    if galois:
        ctx.generate_galois_keys()
    return SiteKeys(params, ctx, symmetric)


# ------------------------------------------------------------------------------------------- wire
def _pack(header: dict[str, Any], blobs: Sequence[bytes]) -> bytes:
    head = json.dumps(header).encode()
    parts = [_MAGIC, struct.pack("<II", len(head), len(blobs)), head]
    for b in blobs:
        parts += [struct.pack("<Q", len(b)), b]
    return b"".join(parts)


def _unpack_chunks(
    data: bytes, kind: str, node: NodeContext
) -> tuple[dict[str, Any], HEParams, tuple[tuple[int, int], ...], list[list[Any]]]:
    """A chunked ciphertext message read on the node: its header, parameters (checked against the
    node's context), stem taps and ciphertexts grouped ``per_chunk``."""
    header, blobs = _unpack(data, kind)
    params = HEParams.from_dict(header["params"])
    if params != node.params:
        raise ValueError(f"ciphertexts made for {params}, but the node context is {node.params}")
    per = int(header["per_chunk"])
    vecs = [_ts().ckks_vector_from(node.context, b) for b in blobs]
    taps = tuple((int(dy), int(dx)) for dy, dx in header["taps"])
    return header, params, taps, [vecs[i : i + per] for i in range(0, len(vecs), per)]


def _unpack(data: bytes, kind: str) -> tuple[dict[str, Any], list[bytes]]:
    if not data.startswith(_MAGIC):
        raise ValueError("not a prosima HE message")
    pos = len(_MAGIC)
    n_head, n_blobs = struct.unpack_from("<II", data, pos)
    pos += 8
    header = json.loads(data[pos : pos + n_head])
    pos += n_head
    if header.get("kind") != kind:
        raise ValueError(f"expected a {kind!r} message, got {header.get('kind')!r}")
    blobs = []
    for _ in range(n_blobs):
        (n,) = struct.unpack_from("<Q", data, pos)
        pos += 8
        blobs.append(data[pos : pos + n])
        pos += n
    return header, blobs


def serialize_vectors(vectors: Sequence[ts.CKKSVector]) -> bytes:
    """Ciphertexts (e.g. ``encrypted_forward``'s output) as one message."""
    return _pack({"kind": "vectors"}, [v.serialize() for v in vectors])


def load_vectors(data: bytes, context: ts.Context) -> list[ts.CKKSVector]:
    """``serialize_vectors``' message, linked to ``context`` (the site's, to decrypt)."""
    _, blobs = _unpack(data, "vectors")
    return [_ts().ckks_vector_from(context, b) for b in blobs]


# ---------------------------------------------------------------------------------------- packing
def _check_model(model: object) -> FusionNet:
    if not isinstance(model, FusionNet):
        raise ValueError(f"model must be a prosima.fusion.network.FusionNet, got {type(model).__name__}")
    if model.config.select:
        raise ValueError(
            "encrypted inference of a network over the polynomial maximum (select > 0) is not built "
            "yet: its depth needs other CKKS parameters; fuse it in plaintext"
        )
    return model


def _as_image(x: object, name: str, *, unit: bool = True) -> np.ndarray:
    arr = np.asarray(x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x, dtype=np.float64)
    if arr.ndim != 2 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 2-D image, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    if unit and (arr.min() < 0.0 or arr.max() > 1.0):
        raise ValueError(f"{name} must lie in [0, 1], got [{arr.min():.4g}, {arr.max():.4g}]")
    return arr


def check_sources(a: object, b: object) -> tuple[np.ndarray, np.ndarray]:
    """Both sources as float64 2-D arrays in [0, 1] of one shape, or a ValueError naming the problem."""
    a_, b_ = _as_image(a, "source a (MRI)"), _as_image(b, "source b")
    if a_.shape != b_.shape:
        raise ValueError(f"the two sources differ in shape: {a_.shape} vs {b_.shape}")
    return a_, b_


def chunk_bounds(n_pixels: int, slots: int) -> list[tuple[int, int]]:
    """(start, stop) of each chunk of ``slots`` pixels in the flattened image."""
    return [(s, min(s + slots, n_pixels)) for s in range(0, n_pixels, slots)]


def tap_rows(
    a: np.ndarray, b: np.ndarray, taps: Sequence[tuple[int, int]], start: int, stop: int
) -> np.ndarray:
    """(2 * T, stop - start) the shifted sources at flat pixels [start, stop): row ``s * T + t`` is
    source ``s`` read at (y + dy_t, x + dx_t), edges replicated (what the stem's padding does)."""
    w = a.shape[1]
    reach = max(max(abs(dy), abs(dx)) for dy, dx in taps)
    ys, xs = np.divmod(np.arange(start, stop), w)
    rows = []
    for src in (a, b):
        padded = np.pad(src, reach, mode="edge")
        rows += [padded[ys + reach + dy, xs + reach + dx] for dy, dx in taps]
    return np.stack(rows)


@dataclass
class EncryptedPair:
    """The site's encrypted sources: per chunk, 2 * T ciphertexts (source-major, ``taps`` order)."""

    params: HEParams
    shape: tuple[int, int]
    taps: tuple[tuple[int, int], ...]
    chunk_ids: list[int]
    chunks: list[list[ts.CKKSVector]]

    @property
    def n_ciphertexts(self) -> int:
        return sum(len(c) for c in self.chunks)

    def serialize(self) -> bytes:
        header = {
            "kind": "pair",
            "params": self.params.to_dict(),
            "shape": list(self.shape),
            "taps": [list(t) for t in self.taps],
            "chunk_ids": self.chunk_ids,
            "per_chunk": 2 * len(self.taps),
        }
        return _pack(header, [v.serialize() for c in self.chunks for v in c])

    @classmethod
    def from_bytes(cls, data: bytes, node: NodeContext) -> EncryptedPair:
        """The node's copy, linked to its public context."""
        header, params, taps, chunks = _unpack_chunks(data, "pair", node)
        return cls(
            params, (int(header["shape"][0]), int(header["shape"][1])), taps, header["chunk_ids"], chunks
        )


def encrypt_sources(
    keys: SiteKeys, a: object, b: object, model: FusionNet, *, chunks: Sequence[int] | None = None
) -> EncryptedPair:
    """Encrypt the shifted sources the model's stem reads (all chunks, or only ``chunks``: stream
    one chunk at a time to keep memory bounded, as ``he_fuse`` does)."""
    a_, b_ = check_sources(a, b)
    taps = tuple(tap_offsets(_check_model(model).config))
    bounds = chunk_bounds(a_.size, keys.params.slot_count)
    ids = list(range(len(bounds))) if chunks is None else [int(k) for k in chunks]
    if any(not 0 <= k < len(bounds) for k in ids):
        raise ValueError(f"chunk ids {ids} outside 0..{len(bounds) - 1} for shape {a_.shape}")
    ts_ = _ts()
    out = []
    for k in ids:
        rows = tap_rows(a_, b_, taps, *bounds[k])
        out.append([ts_.ckks_vector(keys.context, r.tolist()) for r in rows])
    return EncryptedPair(keys.params, a_.shape, taps, ids, out)


# -------------------------------------------------------------------------------------- evaluator
@dataclass
class _Enc:
    """A value the node holds: a ciphertext (or, with ``vec`` None, a public constant), how many
    rescalings it went through, and ``rho``: the decrypted slots read ``rho * value``."""

    vec: Any
    depth: int = 0
    rho: float = 1.0
    const: float = 0.0


class _Evaluator:
    """Plaintext-weighted sums, squares and products of ``_Enc`` with exact scale bookkeeping."""

    def __init__(self, params: HEParams, context: ts.Context) -> None:
        self.params, self.context = params, context
        self.delta = params.global_scale
        self.primes = params.data_primes()
        self.top = len(self.primes) - 1
        self.bits = params.coeff_mod_bit_sizes[:-1]

    def dropped(self, depth: int) -> int:
        """The prime the next rescale of a ciphertext at ``depth`` divides by."""
        if depth >= self.top:
            raise ValueError(f"out of multiplicative levels (depth {depth} of {self.params.depth})")
        return self.primes[self.top - depth]

    def _bits_left(self, depth: int) -> int:
        return sum(self.bits[: self.top - depth + 1])

    @contextmanager
    def _lazy(self) -> Iterator[None]:
        self.context.auto_rescale = False
        try:
            yield
        finally:
            self.context.auto_rescale = True

    def lincomb(self, terms: Sequence[tuple[float, _Enc]], bias: float = 0.0) -> _Enc:
        """``sum_k c_k x_k + bias`` with ``rho`` 1; one level deeper than the deepest term."""
        bias = float(bias)
        live: list[tuple[float, _Enc]] = []
        for c, x in terms:
            if x.vec is None:
                bias += float(c) * x.const
            # a weight that encodes to 0 at this scale contributes nothing (and TenSEAL would need
            # the public key to replace the transparent product by an encryption of zero)
            elif abs(c) * self.delta >= 0.5:
                live.append((float(c), x))
        if not live:
            return _Enc(None, const=bias)
        deepest = max(x.depth for _, x in live)
        # Lazy: products stay at scale delta**2; the product with 1/delta that triggers the single
        # rescale labels the sum delta**3, which SEAL allows while it has fewer bits than the modulus.
        lazy = len(live) > 1 and 3 * self.params.scale_bits + 1 < self._bits_left(deepest)
        acc = None
        if lazy:
            q = self.dropped(deepest)
            with self._lazy():
                for c, x in live:
                    p = x.vec * (c * q / (self.delta * x.rho))
                    acc = p if acc is None else acc.add_(p)
            acc = acc * (1.0 / self.delta)
        else:
            for c, x in live:
                p = x.vec * (c * self.dropped(x.depth) / (self.delta * x.rho))
                acc = p if acc is None else acc.add_(p)
        if bias:
            acc.add_(bias)
        return _Enc(acc, deepest + 1)

    def square(self, x: _Enc) -> _Enc:
        if x.vec is None:
            return _Enc(None, const=x.const**2)
        return _Enc(x.vec.square(), x.depth + 1, x.rho**2 * self.delta / self.dropped(x.depth))

    def mul(self, x: _Enc, y: _Enc) -> _Enc:
        if x.vec is None or y.vec is None:
            c, e = (x.const, y) if x.vec is None else (y.const, x)
            return self.lincomb([(c, e)])
        x, y = sorted((x, y), key=lambda e: e.depth)  # see add
        d = y.depth
        return _Enc(x.vec * y.vec, d + 1, x.rho * y.rho * self.delta / self.dropped(d))

    def add(self, x: _Enc, y: _Enc) -> _Enc:
        """``x + y`` for values whose ``rho`` is 1 (linear outputs, fresh ciphertexts, constants)."""
        if x.vec is None or y.vec is None:
            c, e = (x.const, y) if x.vec is None else (y.const, x)
            if e.vec is None:
                return _Enc(None, const=c + e.const)
            return _Enc(e.vec + c * e.rho, e.depth, e.rho) if c else e
        if x.rho != 1.0 or y.rho != 1.0:
            raise ValueError("internal: adding ciphertexts whose scale ratios differ")
        # TenSEAL mod-switches the operand at the higher level in place: make that the left one,
        # which it copies first, so that neither input (cached features, say) changes level.
        x, y = sorted((x, y), key=lambda e: e.depth)
        return _Enc(x.vec + y.vec, y.depth)


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().double().numpy()


def _first_layers(ev: _Evaluator, model: FusionNet, inputs: list[_Enc]) -> tuple[list[_Enc], list[_Enc]]:
    """The stem (depth 1) and its squares (depth 2): what every later layer reads."""
    w, bias = stem_tap_weights(model)
    w, bias = _np(w), _np(bias)
    n_taps = w.shape[2]
    x = [
        ev.lincomb([(w[c, s, t], inputs[s * n_taps + t]) for s in range(2) for t in range(n_taps)], bias[c])
        for c in range(w.shape[0])
    ]
    return x, [ev.square(xc) for xc in x]


def _mix(
    ev: _Evaluator,
    model: FusionNet,
    x: list[_Enc],
    sq: list[_Enc],
    gain: np.ndarray | None = None,
    offset: float = 0.0,
) -> list[_Enc]:
    """``gain_i * mix(act1(x))_i + offset`` (depth 3): act1 folded into mix's weights."""
    wm, bm, a1 = _np(model.mix.weight)[:, :, 0, 0], _np(model.mix.bias), _np(model.act1.a)
    g = np.ones(len(bm)) if gain is None else gain
    return [
        ev.lincomb(
            [(g[i] * wm[i, c], x[c]) for c in range(len(x))]
            + [(g[i] * wm[i, c] * a1[c], sq[c]) for c in range(len(x))],
            g[i] * bm[i] + offset,
        )
        for i in range(len(bm))
    ]


def _mean(ev: _Evaluator, inputs: list[_Enc], taps: Sequence[tuple[int, int]]) -> _Enc:
    centre = list(taps).index((0, 0))
    return ev.lincomb([(0.5, inputs[centre]), (0.5, inputs[len(taps) + centre])])


def _check_pair(model: FusionNet, enc: EncryptedPair) -> tuple[tuple[int, int], ...]:
    taps = tuple(tap_offsets(_check_model(model).config))
    if not isinstance(enc, EncryptedPair):
        raise ValueError(f"expected an EncryptedPair, got {type(enc).__name__}")
    if tuple(enc.taps) != taps:
        raise ValueError(
            f"the ciphertexts hold {len(enc.taps)} taps of another stem; this model reads {len(taps)}"
        )
    if any(len(c) != 2 * len(taps) for c in enc.chunks):
        raise ValueError(f"each chunk must hold {2 * len(taps)} ciphertexts (2 sources x {len(taps)} taps)")
    enc.params.require_depth(INFERENCE_DEPTH)
    return taps


def _forward_chunk(
    ev: _Evaluator, model: FusionNet, chunk: list[Any], taps: tuple[tuple[int, int], ...]
) -> Any:
    inputs = [_Enc(v) for v in chunk]
    mean = _mean(ev, inputs, taps)
    x, sq = _first_layers(ev, model, inputs)
    z = _mix(ev, model, x, sq)
    del x, sq
    zz = [ev.square(zi) for zi in z]
    v, bo, a2 = _np(model.out.weight)[0, :, 0, 0], float(_np(model.out.bias)[0]), _np(model.act2.a)
    out = ev.lincomb(
        [(v[i], z[i]) for i in range(len(z))] + [(v[i] * a2[i], zz[i]) for i in range(len(z))], bo
    )
    return ev.add(out, mean).vec


@torch.no_grad()
def encrypted_forward(model: FusionNet, enc: EncryptedPair) -> list[ts.CKKSVector]:
    """The node's pass: one ciphertext of fused (unclamped) pixels per chunk of ``enc``. Runs with
    the public context only: scalar products, additions and squares (relinearised), no rotation."""
    taps = _check_pair(model, enc)
    if not enc.chunks:
        return []
    ev = _Evaluator(enc.params, enc.chunks[0][0].context())
    return [_forward_chunk(ev, model, chunk, taps) for chunk in enc.chunks]


def decrypt_fused(keys: SiteKeys, enc_out: Sequence[ts.CKKSVector], shape: tuple[int, int]) -> np.ndarray:
    """The site's last step: decrypt every chunk, reassemble the (H, W) image, clamp to [0, 1].
    ``enc_out`` must cover the whole image (its chunks' pixel counts are checked against ``shape``)."""
    h, w = (int(s) for s in shape)
    bounds = chunk_bounds(h * w, keys.params.slot_count)
    sizes = [e - s for s, e in bounds]
    got = [v.size() for v in enc_out]
    if got != sizes:
        raise ValueError(
            f"the ciphertexts hold chunks of {got} pixels, but shape {(h, w)} needs {sizes}: "
            "a ciphertext set for a different shape"
        )
    sk = keys.context.secret_key()
    flat = np.concatenate([np.asarray(v.decrypt(sk), dtype=np.float64) for v in enc_out])
    return np.clip(flat.reshape(h, w), 0.0, 1.0)


# ------------------------------------------------------------------------------------ round trip
def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (MiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


@dataclass
class HEStats:
    """What one encrypted fusion cost."""

    params: dict[str, Any]
    security_bits: int
    shape: tuple[int, int]
    n_chunks: int
    ciphertexts_up: int
    bytes_context: int
    bytes_up: int
    bytes_down: int
    seconds_keygen: float = 0.0
    seconds_encrypt: float = 0.0
    seconds_compute: float = 0.0
    seconds_decrypt: float = 0.0
    peak_rss_mb: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def seconds_total(self) -> float:
        return self.seconds_keygen + self.seconds_encrypt + self.seconds_compute + self.seconds_decrypt

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["seconds_total"] = self.seconds_total
        return d


@torch.no_grad()
def he_fuse(
    model: FusionNet,
    a: object,
    b: object,
    params: HEParams = INFERENCE_PARAMS,
    *,
    keys: SiteKeys | None = None,
) -> tuple[np.ndarray, HEStats]:
    """Fuse ``a`` (MRI) and ``b`` under encryption, chunk by chunk, through real serialisation:
    the site encrypts a chunk, the node (public context loaded from bytes) computes its fused pixels,
    the site decrypts them. Returns the clamped (H, W) image and what it cost."""
    _check_model(model)
    a_, b_ = check_sources(a, b)
    params.require_depth(INFERENCE_DEPTH)
    if keys is not None and keys.params != params:
        raise ValueError(f"the keys were made for {keys.params}, not {params}")
    t0 = time.perf_counter()
    keys = keys or make_context(params)
    ctx_bytes = keys.public_bytes()
    node = NodeContext.from_bytes(ctx_bytes)
    t_key = time.perf_counter() - t0
    bounds = chunk_bounds(a_.size, keys.params.slot_count)
    flat = np.empty(a_.size)
    stats = HEStats(
        params=keys.params.to_dict(),
        security_bits=keys.params.security_bits,
        shape=a_.shape,
        n_chunks=len(bounds),
        ciphertexts_up=0,
        bytes_context=len(ctx_bytes),
        bytes_up=0,
        bytes_down=0,
        seconds_keygen=t_key,
    )
    sk = keys.context.secret_key()
    for k, (s, e) in enumerate(bounds):
        t0 = time.perf_counter()
        up = encrypt_sources(keys, a_, b_, model, chunks=[k])
        up_bytes = up.serialize()
        stats.ciphertexts_up += up.n_ciphertexts
        del up
        t1 = time.perf_counter()
        (out,) = encrypted_forward(model, EncryptedPair.from_bytes(up_bytes, node))
        down_bytes = serialize_vectors([out])
        t2 = time.perf_counter()
        (vec,) = load_vectors(down_bytes, keys.context)
        flat[s:e] = vec.decrypt(sk)
        t3 = time.perf_counter()
        stats.bytes_up += len(up_bytes)
        stats.bytes_down += len(down_bytes)
        stats.seconds_encrypt += t1 - t0
        stats.seconds_compute += t2 - t1
        stats.seconds_decrypt += t3 - t2
    stats.peak_rss_mb = peak_rss_mb()
    stats.notes.append(
        "encrypt/compute/decrypt include (de)serialisation; keygen includes the context hand-over"
    )
    return np.clip(flat.reshape(a_.shape), 0.0, 1.0), stats


@torch.no_grad()
def plain_forward(model: FusionNet, a: object, b: object) -> np.ndarray:
    """The same network in float64 plaintext (unclamped), the reference for the encrypted pass."""
    a_, b_ = check_sources(a, b)
    net = _check_model(model)
    ref = FusionNet(net.config).double()
    ref.load_state_dict({k: v.double() for k, v in net.state_dict().items()})
    x = torch.from_numpy(np.stack([a_, b_]))[None]
    return ref(x)[0, 0].numpy()


__all__ = [
    "HE_STANDARD_MAX_BITS",
    "INFERENCE_DEPTH",
    "INFERENCE_PARAMS",
    "EncryptedPair",
    "HEParams",
    "HEStats",
    "NodeContext",
    "SiteKeys",
    "check_sources",
    "chunk_bounds",
    "decrypt_fused",
    "encrypt_sources",
    "encrypted_forward",
    "he_fuse",
    "load_vectors",
    "make_context",
    "peak_rss_mb",
    "plain_forward",
    "serialize_vectors",
    "tap_rows",
]
