"""Training data: banks of clean slices per subject list, seeded patch batches with noise and z*.

Subjects, never slices, separate training from validation. Slices come from ``prosima.imaging``
(BraTS folders, or the embedded MNI152 brain when no folder is given) and are kept as one tensor.
Noise is drawn by a ``torch.Generator`` whose state is saved with every checkpoint, so a resumed run
draws the same batches as an uninterrupted one.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from prosima.imaging.corruption import gaussian_noise
from prosima.imaging.datasets import VolumeSlices, brats_slices, embedded_default_slices, find_brats_subjects

EMBEDDED_SUBJECT = "MNI152"


@dataclass(frozen=True)
class SliceBank:
    """Clean slices ``[N, H, W]`` in [0, 1] and where each came from (subject, contrast, z).

    ``stacks`` ``[N, 2c+1, H, W]`` (2.5-D banks only) hold each slice between its c neighbours.
    """

    images: torch.Tensor
    meta: tuple[tuple[str, str, int], ...]
    stacks: torch.Tensor | None = None

    @property
    def context(self) -> int:
        return 0 if self.stacks is None else (int(self.stacks.shape[1]) - 1) // 2

    def inputs(self) -> torch.Tensor:
        """What a generator reads of each clean slice: ``[N, 2c+1, H, W]`` (c = 0 for a 2-D bank)."""
        return self.images.unsqueeze(1) if self.stacks is None else self.stacks

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @classmethod
    def from_slices(
        cls, ds: VolumeSlices, indices: Sequence[int] | None = None, context: int = 0
    ) -> SliceBank:
        picks = list(range(len(ds)) if indices is None else indices)
        items = [ds[i] for i in picks]
        images = torch.from_numpy(np.stack([it.image for it in items]).astype(np.float32))
        stacks = None
        if context:
            stacks = torch.from_numpy(np.stack([ds.stack(i, context) for i in picks]).astype(np.float32))
        return cls(images, tuple((it.subject, it.contrast, it.z) for it in items), stacks)

    def subset(self, n: int) -> SliceBank:
        """``n`` slices evenly spaced over the bank (all of them when ``n >= len``)."""
        if n >= len(self):
            return self
        picks = np.linspace(0, len(self) - 1, max(n, 1)).round().astype(int).tolist()
        stacks = None if self.stacks is None else self.stacks[picks]
        return SliceBank(self.images[picks], tuple(self.meta[i] for i in picks), stacks)


@functools.lru_cache(maxsize=4)
def _bank(
    root: str | None,
    subjects: tuple[str, ...],
    contrasts: tuple[str, ...],
    min_brain_fraction: float,
    max_slices_per_volume: int | None,
    context: int,
) -> SliceBank:
    kwargs = {"min_brain_fraction": min_brain_fraction, "max_slices_per_volume": max_slices_per_volume}
    if root is None:
        unknown = sorted(set(subjects) - {EMBEDDED_SUBJECT})
        if unknown:
            raise ValueError(
                f"the embedded default brain has one subject, {EMBEDDED_SUBJECT!r}; got {unknown}"
            )
        return SliceBank.from_slices(embedded_default_slices(**kwargs), context=context)
    ds = brats_slices(root, list(subjects), list(contrasts), **kwargs)
    return SliceBank.from_slices(ds, context=context)


def load_bank(
    root: str | None,
    subjects: Sequence[str],
    contrasts: Sequence[str] = ("t1n",),
    min_brain_fraction: float = 0.05,
    max_slices_per_volume: int | None = None,
    context: int = 0,
) -> SliceBank:
    """Slices of the given subjects (cached: federated rounds reload nothing); ``context`` > 0 also
    keeps each slice's neighbours for a 2.5-D generator."""
    if not subjects:
        raise ValueError("no subjects given")
    return _bank(
        root,
        tuple(subjects),
        tuple(contrasts),
        float(min_brain_fraction),
        max_slices_per_volume,
        int(context),
    )


def default_split(root: str | None, train: Sequence[str], val: Sequence[str]) -> tuple[list[str], list[str]]:
    """Train and validation subjects; an empty train list means every subject not in ``val``.

    The embedded brain is one subject: it serves as both (smoke tests only).
    """
    if root is None:
        return list(train) or [EMBEDDED_SUBJECT], list(val) or [EMBEDDED_SUBJECT]
    if not val:
        raise ValueError("data.val_subjects is empty: name the held-out subject(s)")
    overlap = sorted(set(train) & set(val))
    if overlap:
        raise ValueError(f"subjects {overlap} are in both the training and the validation set")
    train = list(train) or [s for s in find_brats_subjects(root) if s not in set(val)]
    return train, list(val)


@dataclass(frozen=True)
class PatchBatch:
    """One training batch: clean ``[B, 1, p, p]``, noisy ``[B, 2c+1, p, p]`` (the slice and its c
    neighbours each side; c = 0 in 2-D), sigmas ``[B]``, optional z* and shard map."""

    clean: torch.Tensor
    noisy: torch.Tensor
    sigmas: torch.Tensor
    fingerprints: torch.Tensor | None = None  # [B, K, D]
    shard_index: torch.Tensor | None = None  # [B, p, p]


class PatchSampler:
    """Random patches of random slices with blind Gaussian noise (sigma drawn per patch; in 2.5-D the
    neighbouring slices get their own noise of the same sigma, as in a noisy volume)."""

    def __init__(
        self,
        bank: SliceBank,
        patch: int,
        batch_size: int,
        sigma_range: tuple[float, float],
        seed: int,
        fingerprints: torch.Tensor | None = None,
        shard_index: torch.Tensor | None = None,
        min_foreground: float = 0.1,
        tries: int = 4,
    ) -> None:
        _n, h, w = bank.images.shape
        if patch > min(h, w):
            raise ValueError(f"patch {patch} is larger than the slices ({h}x{w})")
        if (fingerprints is None) != (shard_index is None):
            raise ValueError("fingerprints and shard_index go together")
        self.bank, self.patch, self.batch_size = bank, patch, batch_size
        self.sigma_range = sigma_range
        self.fingerprints, self.shard_index = fingerprints, shard_index
        self.min_foreground, self.tries = min_foreground, tries
        self.generator = torch.Generator().manual_seed(int(seed))

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.generator.set_state(state["generator"])

    def _int(self, high: int) -> int:
        return int(torch.randint(high, (1,), generator=self.generator))

    def next(self) -> PatchBatch:
        n, h, w = self.bank.images.shape
        p, g, c = self.patch, self.generator, self.bank.context
        inputs = self.bank.inputs()
        crops, fps, idxs = [], [], []
        for _ in range(self.batch_size):
            for _ in range(self.tries):
                i, y, x = self._int(n), self._int(h - p + 1), self._int(w - p + 1)
                crop = inputs[i, :, y : y + p, x : x + p]
                if float((crop[c] > 0).float().mean()) >= self.min_foreground:
                    break
            crops.append(crop)
            if self.fingerprints is not None and self.shard_index is not None:
                fps.append(self.fingerprints[i])
                idxs.append(self.shard_index[y : y + p, x : x + p])
        stack = torch.stack(crops)
        lo, hi = self.sigma_range
        sigmas = lo + (hi - lo) * torch.rand(self.batch_size, generator=g)
        noisy = stack + sigmas.view(-1, 1, 1, 1) * torch.randn(stack.shape, generator=g)
        clean = stack[:, c : c + 1].contiguous()
        return PatchBatch(
            clean,
            noisy,
            sigmas,
            torch.stack(fps) if fps else None,
            torch.stack(idxs) if idxs else None,
        )


def noisy_copies(bank: SliceBank, sigmas: Sequence[float], seed: int) -> torch.Tensor:
    """Fixed noisy versions ``[S, N, 2c+1, H, W]`` of the generator's inputs (seed rule: seed + 100000 *
    sigma_index + slice_index; a 2-D bank's slices draw exactly the noise they did before 2.5-D)."""
    inputs = bank.inputs().numpy()
    out = [
        np.stack(
            [
                gaussian_noise(
                    inputs[i] if bank.context else inputs[i, 0], float(s), seed=seed + 100_000 * si + i
                ).image.reshape(inputs[i].shape)
                for i in range(len(bank))
            ]
        )
        for si, s in enumerate(sigmas)
    ]
    return torch.from_numpy(np.stack(out))
