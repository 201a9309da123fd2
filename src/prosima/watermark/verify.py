"""Black-box ownership verification: query a suspicious model on clean and marked versions of m
held-out non-target images and test whether the mark raises the target class.

With probabilities: paired one-sided t-test (``scipy.stats.ttest_rel``, alternative 'greater') of
H0 ``P_marked(target) <= P_clean(target) + tau`` against H1 ``P_marked > P_clean + tau``. Label-only:
Wilcoxon signed-rank test (one-sided) of the differences ``1[marked -> target] - 1[clean -> target]
- tau``. Ownership is claimed when the p-value is below ``alpha`` (default 0.01).

A mark that the surrogate reads as the target class partly transfers to models never trained on it
(an adversarial effect), so ``tau`` should exceed what clean models show: ``calibrate_tau`` sets it to
the upper one-sided 99% confidence bound of the mean effect on independently trained clean reference
models, fixed by the owner before release (and recorded in the key).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import stats

from prosima.errors import InputError

ModelFn = Callable[[np.ndarray], np.ndarray]
DEFAULT_TAU = 0.05
DEFAULT_ALPHA = 0.01


class ModelOutputError(InputError, ValueError):
    """A suspicious model answered with something that is not what the test needs."""


def check_probabilities(out: object, n: int, target: int) -> np.ndarray:
    """``out`` as an (n, classes) float array of probabilities, or ``ModelOutputError``."""
    try:
        p = np.asarray(out, dtype=np.float64)
    except (TypeError, ValueError):
        raise ModelOutputError(f"model output of type {type(out).__name__} is not numeric") from None
    if p.ndim != 2 or p.shape[0] != n:
        raise ModelOutputError(f"model output has shape {p.shape}; expected ({n}, classes)")
    if p.shape[1] <= target:
        raise ModelOutputError(f"model output has {p.shape[1]} classes; the target class is {target}")
    if not np.all(np.isfinite(p)):
        raise ModelOutputError("model output holds NaN or infinite values")
    if p.min() < -1e-6 or p.max() > 1 + 1e-6 or not np.allclose(p.sum(axis=1), 1.0, atol=1e-3):
        raise ModelOutputError("model output is not probabilities (each row in [0, 1], summing to 1)")
    return np.clip(p, 0.0, 1.0)


def check_labels(out: object, n: int) -> np.ndarray:
    """``out`` as (n,) non-negative integer labels, or ``ModelOutputError``."""
    try:
        y = np.asarray(out)
    except (TypeError, ValueError):
        raise ModelOutputError(f"model output of type {type(out).__name__} is not labels") from None
    if y.shape != (n,):
        raise ModelOutputError(f"model output has shape {y.shape}; expected ({n},) labels")
    if not (
        np.issubdtype(y.dtype, np.integer)
        or (np.issubdtype(y.dtype, np.floating) and np.all(np.isfinite(y)) and np.all(y == np.rint(y)))
    ):
        raise ModelOutputError("model output labels are not whole numbers")
    if y.min(initial=0) < 0:
        raise ModelOutputError("model output labels are negative")
    return y.astype(np.int64)


def _query(model_fn: ModelFn, images: np.ndarray) -> object:
    try:
        return model_fn(np.asarray(images, dtype=np.float32))
    except ModelOutputError:
        raise
    except Exception as exc:
        raise ModelOutputError(f"the model failed on the queries: {type(exc).__name__}: {exc}") from None


def _paired_p(diff: np.ndarray, test: str) -> tuple[float, float]:
    """(statistic, one-sided p) of H1 mean/median of ``diff`` > 0; degenerate samples handled."""
    if np.allclose(diff, diff[0], rtol=0.0, atol=1e-12):
        return (np.inf, 0.0) if diff[0] > 0 else (0.0 if diff[0] == 0 else -np.inf, 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if test == "ttest_rel":
            res = stats.ttest_rel(diff, np.zeros_like(diff), alternative="greater")
        else:
            res = stats.wilcoxon(diff, alternative="greater", zero_method="wilcox")
    return float(res.statistic), float(res.pvalue)


def verify_ownership(
    model_fn: ModelFn,
    clean_queries: np.ndarray,
    marked_queries: np.ndarray,
    target: int,
    tau: float = DEFAULT_TAU,
    alpha: float = DEFAULT_ALPHA,
    label_only: bool = False,
) -> dict[str, Any]:
    """Test ``model_fn`` (images (m, H, W) in [0, 1] -> probabilities (m, classes), or labels (m,)
    when ``label_only``) on paired clean / marked queries; see the module note.

    Returns ``n``, ``target``, ``tau``, ``alpha``, ``test``, ``wsr`` (fraction of marked queries
    classified as target), ``wsr_clean``, ``p_clean``/``p_marked`` (mean target probability; None
    when label-only), ``delta_p``, ``statistic``, ``p_value`` and ``claim`` (p < alpha)."""
    clean = np.asarray(clean_queries, dtype=np.float32)
    marked = np.asarray(marked_queries, dtype=np.float32)
    if clean.shape != marked.shape or clean.ndim != 3 or len(clean) < 2:
        raise ValueError(
            f"clean {clean.shape} and marked {marked.shape} queries must be the same (m>=2, H, W)"
        )
    n = len(clean)
    out: dict[str, Any] = {"n": n, "target": int(target), "tau": float(tau), "alpha": float(alpha)}
    if label_only:
        yc, ym = check_labels(_query(model_fn, clean), n), check_labels(_query(model_fn, marked), n)
        hit_c, hit_m = (yc == target).astype(float), (ym == target).astype(float)
        stat, p = _paired_p(hit_m - hit_c - tau, "wilcoxon")
        out |= {"test": "wilcoxon", "p_clean": None, "p_marked": None, "delta_p": None}
    else:
        pc = check_probabilities(_query(model_fn, clean), n, target)
        pm = check_probabilities(_query(model_fn, marked), n, target)
        hit_c, hit_m = (pc.argmax(1) == target).astype(float), (pm.argmax(1) == target).astype(float)
        stat, p = _paired_p(pm[:, target] - pc[:, target] - tau, "ttest_rel")
        out |= {
            "test": "ttest_rel",
            "p_clean": float(pc[:, target].mean()),
            "p_marked": float(pm[:, target].mean()),
            "delta_p": float((pm[:, target] - pc[:, target]).mean()),
        }
    out |= {
        "wsr": float(hit_m.mean()),
        "wsr_clean": float(hit_c.mean()),
        "statistic": stat,
        "p_value": p,
        "claim": bool(p < alpha),
    }
    return out


def effect(
    model_fn: ModelFn, clean_queries: np.ndarray, marked_queries: np.ndarray, target: int
) -> np.ndarray:
    """Per query, the rise of the target-class probability that the mark causes."""
    n = len(clean_queries)
    pc = check_probabilities(_query(model_fn, clean_queries), n, target)
    pm = check_probabilities(_query(model_fn, marked_queries), n, target)
    return pm[:, target] - pc[:, target]


def calibrate_tau(
    reference_fns: list[ModelFn],
    clean_queries: np.ndarray,
    marked_queries: np.ndarray,
    target: int,
    floor: float = DEFAULT_TAU,
    z: float = 2.326,
) -> dict[str, Any]:
    """``tau`` = max(floor, the largest over clean reference models of mean effect + z * standard
    error); z = 2.326 is the one-sided 99% normal quantile. Returns tau and each reference's mean."""
    means, bounds = [], []
    for fn in reference_fns:
        d = effect(fn, np.asarray(clean_queries, np.float32), np.asarray(marked_queries, np.float32), target)
        means.append(float(d.mean()))
        bounds.append(float(d.mean() + z * d.std(ddof=1) / np.sqrt(len(d))))
    return {"tau": max([float(floor), *bounds]), "reference_effects": means, "reference_bounds": bounds}
