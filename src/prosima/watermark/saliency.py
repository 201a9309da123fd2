"""EigenCAM saliency (no gradients) and the binary mask of the most salient pixels.

EigenCAM: take a conv layer's activations A (C x h x w) of one image, centre them over the h*w
positions, and project them onto their first principal component (the first right singular vector
of the (h*w) x C matrix). The sign of a singular vector is arbitrary; it is fixed so that the
projection correlates positively with the channel-mean activation (ties: the largest-magnitude
loading is made positive). Then ReLU, bilinear up-sampling to the image and min-max scaling to
[0, 1] (an all-equal map becomes zeros). The SVD runs in float64, so the map is deterministic.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def _layer(model: nn.Module, layer: nn.Module | str | None) -> nn.Module:
    if layer is None:
        if not hasattr(model, "cam_layer"):
            raise ValueError(f"{type(model).__name__} has no cam_layer; name a layer")
        return model.cam_layer
    return model.get_submodule(layer) if isinstance(layer, str) else layer


@torch.no_grad()
def activations(model: nn.Module, images: torch.Tensor, layer: nn.Module | str | None = None) -> torch.Tensor:
    """The output of ``layer`` (default ``model.cam_layer``) for a (N, 1, H, W) batch, via a hook."""
    seen: list[torch.Tensor] = []
    handle = _layer(model, layer).register_forward_hook(lambda _m, _i, out: seen.append(out.detach()))
    try:
        model.eval()
        model(images)
    finally:
        handle.remove()
    if not seen or seen[0].ndim != 4:
        raise ValueError("the layer did not give (N, C, h, w) activations")
    return seen[0]


def eigen_projection(acts: torch.Tensor) -> torch.Tensor:
    """The sign-fixed first-principal-component projection (N, h, w) of (N, C, h, w) activations."""
    n, c, h, w = acts.shape
    a = acts.double().reshape(n, c, h * w).transpose(1, 2)  # (N, hw, C)
    centred = a - a.mean(dim=1, keepdim=True)
    _, _, vh = torch.linalg.svd(centred, full_matrices=False)
    v = vh[:, 0, :]  # (N, C)
    proj = torch.einsum("npc,nc->np", centred, v)
    mean_act = a.mean(dim=2)
    corr = ((mean_act - mean_act.mean(dim=1, keepdim=True)) * proj).sum(dim=1)
    top = v.gather(1, v.abs().argmax(dim=1, keepdim=True)).squeeze(1)
    sign = torch.where(corr.abs() > 1e-12, torch.sign(corr), torch.sign(top))
    sign = torch.where(sign == 0, torch.ones_like(sign), sign)
    return (proj * sign[:, None]).reshape(n, h, w)


def eigencam(
    model: nn.Module,
    images: np.ndarray | torch.Tensor,
    layer: nn.Module | str | None = None,
    batch: int = 128,
) -> np.ndarray:
    """EigenCAM maps (N, H, W) in [0, 1] of (N, H, W) images (see the module note)."""
    x = torch.as_tensor(np.asarray(images, dtype=np.float32))
    x = x[:, None] if x.ndim == 3 else x
    out = []
    for i in range(0, len(x), batch):
        chunk = x[i : i + batch]
        cam = F.relu(eigen_projection(activations(model, chunk, layer)))
        cam = F.interpolate(cam[:, None].float(), size=chunk.shape[-2:], mode="bilinear", align_corners=False)
        cam = cam[:, 0].double()
        lo = cam.amin(dim=(1, 2), keepdim=True)
        span = cam.amax(dim=(1, 2), keepdim=True) - lo
        out.append(torch.where(span > 1e-12, (cam - lo) / span.clamp(min=1e-12), torch.zeros_like(cam)))
    return torch.cat(out).float().numpy()


def top_fraction_mask(saliency: np.ndarray, q: float) -> np.ndarray:
    """Per image, the round(q * H * W) most salient pixels (ties broken by pixel order) as a bool
    mask of the same shape."""
    if not 0.0 < q <= 1.0:
        raise ValueError(f"mask fraction q must be in (0, 1], got {q}")
    s = np.asarray(saliency, dtype=np.float64)
    flat = s.reshape(len(s), -1)
    k = max(1, round(q * flat.shape[1]))
    order = np.argsort(-flat, axis=1, kind="stable")[:, :k]
    mask = np.zeros(flat.shape, dtype=bool)
    np.put_along_axis(mask, order, True, axis=1)
    return mask.reshape(s.shape)
