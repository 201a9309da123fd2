"""Dataset-ownership benchmark for X-Mark (issue 7) against BadNets and Blended on real chest X-rays.

One split by file; the owner trains a surrogate and the X-Mark generator on the training split and
marks a fraction of the target-class training images, clean label (BadNets and Blended mark the same
images the same way). Suspicious models are then queried, black box, with m held-out non-target
images, clean and marked: paired one-sided t-test on the target probability above a margin tau
(``verify_ownership``), and the label-only Wilcoxon variant. Scenarios: Malicious (trained on the
marked set: must be claimed; also at another resolution, with another architecture, fine-tuned on
clean data, pruned, and queried through JPEG), Independent-Model (trained on clean data: must not be
claimed) and Independent-Trigger (a marked model queried with another owner's key: must not be
claimed). Tau is calibrated per method, before any suspect is seen, on clean reference models that
are not among the Independent-Model runs (``calibrate_tau``). Every seed is recorded in the JSON.
"""

from __future__ import annotations

import copy
import io
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from prosima.bench.report import environment, write_json
from prosima.imaging.metrics import psnr, ssim
from prosima.watermark.baselines import BadNets, Blended
from prosima.watermark.classifier import TrainConfig, accuracy, predict_proba, train_classifier
from prosima.watermark.data import XrayData, load_covid_xray, load_dataset, split_by_file
from prosima.watermark.embed import choose_queries
from prosima.watermark.marking import Marker, mark_dataset, quantise, to_uint8
from prosima.watermark.pipeline import train_xmark
from prosima.watermark.train import GeneratorConfig
from prosima.watermark.verify import DEFAULT_ALPHA, DEFAULT_TAU, calibrate_tau, verify_ownership

METHODS = ("xmark", "badnets", "blended")
LABELS = {"xmark": "X-Mark", "badnets": "BadNets", "blended": "Blended"}
MALICIOUS = ("malicious", "resolution", "architecture", "finetune", "prune", "jpeg")
CASES = (*MALICIOUS, "independent_model", "independent_trigger")
AIMS = {"wsr": 0.95, "alpha": DEFAULT_ALPHA, "psnr_db": 40.0, "ssim": 0.98, "accuracy_points": 2.0}
MIN_INDEPENDENT_RUNS = 10


@dataclass(frozen=True)
class _RandomPatch:
    """Another owner's BadNets key: a seeded random binary square patch in the top-left corner."""

    patch_fraction: float = 0.1
    margin: int = 1
    seed: int = 1
    method: str = "badnets"

    def __call__(self, images: np.ndarray) -> np.ndarray:
        out = np.array(images, dtype=np.float32, copy=True)
        s = max(3, round(self.patch_fraction * min(out.shape[-2:])))
        board = np.random.default_rng(self.seed).integers(0, 2, (s, s)).astype(np.float32)
        out[..., self.margin : self.margin + s, self.margin : self.margin + s] = board
        return out

    def describe(self) -> dict[str, Any]:
        return {"method": self.method, "patch": "random binary, top-left", **self.__dict__}


def resize_batch(images: np.ndarray, size: int) -> np.ndarray:
    """(N, H, W) images in [0, 1] resized to ``size`` x ``size`` (PIL bilinear on 8-bit pixels)."""
    from PIL import Image

    if images.shape[-1] == size and images.shape[-2] == size:
        return np.asarray(images, dtype=np.float32)
    px = to_uint8(images)
    out = [np.asarray(Image.fromarray(p).resize((size, size), Image.Resampling.BILINEAR)) for p in px]
    return np.stack(out).astype(np.float32) / 255.0


def jpeg_batch(images: np.ndarray, quality: int = 75) -> np.ndarray:
    """(N, H, W) images in [0, 1] through 8-bit JPEG at ``quality`` (PIL) and back."""
    from PIL import Image

    out = []
    for p in to_uint8(images):
        buf = io.BytesIO()
        Image.fromarray(p).save(buf, format="JPEG", quality=quality)
        buf.seek(0)
        with Image.open(buf) as im:
            out.append(np.asarray(im.convert("L")))
    return np.stack(out).astype(np.float32) / 255.0


def prune_global(model: nn.Module, amount: float) -> nn.Module:
    """A copy of ``model`` with global L1 magnitude pruning of ``amount`` of its conv/linear weights."""
    from torch.nn.utils import prune

    pruned = copy.deepcopy(model)
    params = [(m, "weight") for m in pruned.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=amount)
    for m, name in params:
        prune.remove(m, name)
    return pruned.eval()


def _prob_fn(model: nn.Module, transform: Callable[[np.ndarray], np.ndarray] | None) -> Callable:
    return lambda x: predict_proba(model, transform(x) if transform else x)


def _verify(
    model: nn.Module,
    clean: np.ndarray,
    marked: np.ndarray,
    target: int,
    tau: float,
    transform: Callable[[np.ndarray], np.ndarray] | None = None,
) -> dict[str, Any]:
    """The probability test and the label-only test of one model (queries passed through ``transform``)."""
    fn = _prob_fn(model, transform)
    res = verify_ownership(fn, clean, marked, target, tau=tau)
    lab = verify_ownership(lambda x: fn(x).argmax(1), clean, marked, target, tau=tau, label_only=True)
    res["label_only"] = {k: lab[k] for k in ("wsr", "wsr_clean", "statistic", "p_value", "claim")}
    return _finite(res)


def _finite(obj: Any) -> Any:
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    return obj


def _target_index(classes: list[str], target: int | str) -> int:
    if isinstance(target, str):
        if target not in classes:
            raise ValueError(f"target {target!r} is not one of {classes}")
        return classes.index(target)
    if not 0 <= int(target) < len(classes):
        raise ValueError(f"target {target} out of range for {len(classes)} classes")
    return int(target)


def _load(data: XrayData | str | Path | None, size: int | None) -> XrayData:
    if isinstance(data, XrayData):
        return data
    if data is None:
        return load_covid_xray(size=size)
    return load_dataset(data, size=size)


def _quality(original: np.ndarray, marked: np.ndarray) -> dict[str, float]:
    p = [psnr(a, b, data_range=1.0) for a, b in zip(original, marked, strict=True)]
    s = [ssim(a, b, data_range=1.0) for a, b in zip(original, marked, strict=True)]
    p = [v for v in p if np.isfinite(v)] or [float("inf")]
    return {
        "psnr_db": float(np.mean(p)),
        "psnr_db_min": float(np.min(p)),
        "ssim": float(np.mean(s)),
        "ssim_min": float(np.min(s)),
        "linf": float(np.abs(marked - original).max()),
        "n": len(original),
    }


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "runs": len(runs),
        "wsr_median": float(np.median([r["wsr"] for r in runs])),
        "wsr_clean_median": float(np.median([r["wsr_clean"] for r in runs])),
        "delta_p_median": float(np.median([r["delta_p"] for r in runs])),
        "p_value_median": float(np.median([r["p_value"] for r in runs])),
        "p_value_max": float(np.max([r["p_value"] for r in runs])),
        "claims": int(sum(r["claim"] for r in runs)),
        "label_only_claims": int(sum(r["label_only"]["claim"] for r in runs)),
        "label_only_p_median": float(np.median([r["label_only"]["p_value"] for r in runs])),
    }


def run_watermark_bench(
    data: XrayData | str | Path | None = None,
    *,
    size: int | None = 64,
    seeds: int = 3,
    independent_runs: int = 10,
    reference_runs: int = 2,
    retrain_seeds: int = 1,
    fraction: float = 0.1,
    target: int | str = "Pneumonia",
    epochs: int = 10,
    generator_epochs: int = 8,
    finetune_epochs: int = 5,
    eps: float = 8 / 255,
    mask_fraction: float = 0.25,
    width: int = 16,
    m: int = 100,
    scale: int = 2,
    other_arch: str = "resnet",
    prune_amount: float = 0.5,
    jpeg_quality: int = 75,
    blend_alpha: float = 0.1,
    split_seed: int = 0,
    key_seed: int = 0,
    other_key_seed: int = 1,
    threads: int = 2,
    json_path: str | Path | None = None,
) -> dict[str, Any]:
    """Run every method x scenario (see the module note); print the tables, write JSON and a figure.

    ``seeds`` suspicious models per method for Malicious (fine-tune / prune / JPEG attack each);
    ``retrain_seeds`` of them are also retrained at ``scale`` x the resolution and as ``other_arch``.
    ``independent_runs`` clean models (shared by all methods) and ``reference_runs`` other clean
    models that calibrate tau. ``target``: class name or index."""
    from rich.console import Console

    console = Console(width=None if sys.stdout.isatty() else 160)
    t_start = time.perf_counter()
    torch.set_num_threads(max(1, min(threads, 2)))
    data = _load(data, size)
    t = _target_index(data.classes, target)
    split = split_by_file(data.ids, data.labels, seed=split_seed)
    train, val, test = data.subset(split.train), data.subset(split.val), data.subset(split.test)
    k = len(data.classes)
    hw = int(data.images.shape[-1])
    big = scale * hw
    seed_list = {
        "split": split_seed,
        "key": key_seed,
        "other_key": other_key_seed,
        "queries": key_seed,
        "mark": key_seed,
        "malicious": [100 + i for i in range(seeds)],
        "independent": [200 + i for i in range(independent_runs)],
        "reference": [300 + i for i in range(reference_runs)],
    }

    def fit(images: np.ndarray, labels: np.ndarray, seed: int, arch: str = "cnn", **kw: Any) -> nn.Module:
        cfg = TrainConfig(epochs=kw.pop("n_epochs", epochs), seed=seed, **kw)
        return train_classifier(images, labels, arch, cfg, n_classes=k, width=width)

    # the owner's markers, and another owner's keys (Independent-Trigger)
    console.print(f"{len(data.ids)} images {hw}x{hw}, classes {data.classes}, target {data.classes[t]}")
    timing: dict[str, float] = {}
    t0 = time.perf_counter()
    gcfg = GeneratorConfig(eps=eps, mask_fraction=mask_fraction, epochs=generator_epochs, seed=key_seed)
    xmark, xinfo = train_xmark(data, split, t, gcfg, TrainConfig(epochs=epochs, seed=key_seed), width=width)
    ocfg = GeneratorConfig(eps=eps, mask_fraction=mask_fraction, epochs=generator_epochs, seed=other_key_seed)
    other_xmark, oinfo = train_xmark(
        data, split, t, ocfg, TrainConfig(epochs=epochs, seed=other_key_seed), width=width
    )
    timing["xmark_train_s"] = time.perf_counter() - t0
    markers: dict[str, Marker] = {
        "xmark": xmark,
        "badnets": BadNets(),
        "blended": Blended(blend_alpha, key_seed),
    }
    others: dict[str, Marker] = {
        "xmark": other_xmark,
        "badnets": _RandomPatch(seed=other_key_seed),
        "blended": Blended(blend_alpha, other_key_seed),
    }
    console.print(
        f"X-Mark surrogate test accuracy {xinfo['surrogate']['test_accuracy']:.3f}, surrogate WSR "
        f"{xinfo['generator']['history'][-1]['surrogate_wsr']:.3f} ({timing['xmark_train_s']:.0f} s)"
    )

    queries = choose_queries(data, split.test, t, m, seed_list["queries"])
    qc = queries.images
    marked_sets, qm, qo, quality = {}, {}, {}, {}
    for name, marker in markers.items():
        ms = mark_dataset(train.images, train.labels, train.ids, marker, t, fraction, seed_list["mark"])
        marked_sets[name] = ms
        qm[name] = quantise(marker(qc))
        qo[name] = quantise(others[name](qc))
        quality[name] = {
            "train": _quality(train.images[ms.marked], ms.images[ms.marked]),
            "queries": _quality(qc, qm[name]),
        }

    # clean models: tau calibration (reference) and Independent-Model (+ the clean accuracy baseline)
    t0 = time.perf_counter()
    refs = [fit(train.images, train.labels, s) for s in seed_list["reference"]]
    tau: dict[str, Any] = {}
    for name in METHODS:
        if refs:
            tau[name] = calibrate_tau([_prob_fn(r, None) for r in refs], qc, qm[name], t, floor=DEFAULT_TAU)
        else:
            tau[name] = {"tau": DEFAULT_TAU, "reference_effects": [], "reference_bounds": []}
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {n: {c: [] for c in CASES} for n in METHODS}
    clean_acc = []
    for s in seed_list["independent"]:
        model = fit(train.images, train.labels, s)
        clean_acc.append(accuracy(model, test.images, test.labels))
        for name in METHODS:
            res = _verify(model, qc, qm[name], t, tau[name]["tau"])
            runs[name]["independent_model"].append(res | {"seed": s, "test_accuracy": clean_acc[-1]})
    timing["clean_models_s"] = time.perf_counter() - t0
    console.print(
        f"{len(refs)} reference + {len(clean_acc)} independent clean models "
        f"({timing['clean_models_s']:.0f} s)"
    )

    # suspicious models trained on each marked set, and the attacks on them
    test_big = resize_batch(test.images, big)
    marked_acc: dict[str, list[float]] = {n: [] for n in METHODS}
    t0 = time.perf_counter()
    for name in METHODS:
        ms = marked_sets[name]
        tau_n = tau[name]["tau"]
        for i, s in enumerate(seed_list["malicious"]):
            base = fit(ms.images, ms.labels, s)
            acc = accuracy(base, test.images, test.labels)
            marked_acc[name].append(acc)
            cases: dict[str, tuple[dict[str, Any], float]] = {
                "malicious": (_verify(base, qc, qm[name], t, tau_n), acc),
                "independent_trigger": (_verify(base, qc, qo[name], t, tau_n), acc),
                "jpeg": (_verify(base, qc, qm[name], t, tau_n, lambda x: jpeg_batch(x, jpeg_quality)), acc),
            }
            pruned = prune_global(base, prune_amount)
            cases["prune"] = (
                _verify(pruned, qc, qm[name], t, tau_n),
                accuracy(pruned, test.images, test.labels),
            )
            tuned = train_classifier(
                val.images,
                val.labels,
                config=TrainConfig(epochs=finetune_epochs, lr=5e-4, seed=s),
                model=copy.deepcopy(base),
            )
            cases["finetune"] = (
                _verify(tuned, qc, qm[name], t, tau_n),
                accuracy(tuned, test.images, test.labels),
            )
            if i < retrain_seeds:
                hi = fit(resize_batch(ms.images, big), ms.labels, s)
                res_hi = _verify(hi, qc, qm[name], t, tau_n, lambda x: resize_batch(x, big))
                cases["resolution"] = (res_hi, accuracy(hi, test_big, test.labels))
                other = fit(ms.images, ms.labels, s, arch=other_arch)
                cases["architecture"] = (
                    _verify(other, qc, qm[name], t, tau_n),
                    accuracy(other, test.images, test.labels),
                )
            for case, (res, case_acc) in cases.items():
                runs[name][case].append(res | {"seed": s, "test_accuracy": case_acc})
        console.print(f"{LABELS[name]}: suspicious models done ({time.perf_counter() - t0:.0f} s)")
    timing["suspicious_models_s"] = time.perf_counter() - t0

    summary = {n: {c: _summary(runs[n][c]) for c in CASES if runs[n][c]} for n in METHODS}
    accuracy_out = {
        "clean_models": {"mean": float(np.mean(clean_acc)), "runs": clean_acc},
        **{
            n: {
                "mean": float(np.mean(marked_acc[n])),
                "runs": marked_acc[n],
                "points_vs_clean": 100 * float(np.mean(marked_acc[n]) - np.mean(clean_acc)),
            }
            for n in METHODS
        },
    }
    out: dict[str, Any] = {
        "benchmark": "watermark",
        "source": {k2: v for k2, v in data.source.items()},
        "classes": data.classes,
        "target": t,
        "split": {
            "seed": split.seed,
            "fractions": list(split.fractions),
            "n_train": len(split.train),
            "n_val": len(split.val),
            "n_test": len(split.test),
        },
        "settings": {
            "size": hw,
            "fraction": fraction,
            "marked_images": {n: len(marked_sets[n].marked) for n in METHODS},
            "epochs": epochs,
            "generator_epochs": generator_epochs,
            "finetune": {"epochs": finetune_epochs, "lr": 5e-4, "data": "clean validation split"},
            "eps": eps,
            "mask_fraction": mask_fraction,
            "width": width,
            "m": len(qc),
            "scale": scale,
            "resolution": big,
            "other_arch": other_arch,
            "prune_amount": prune_amount,
            "jpeg_quality": jpeg_quality,
            "markers": {n: getattr(markers[n], "describe", dict)() for n in METHODS},
            "other_keys": {n: getattr(others[n], "describe", dict)() for n in METHODS},
            "alpha": DEFAULT_ALPHA,
            "threads": torch.get_num_threads(),
            "seeds": seed_list,
            "retrain_seeds": retrain_seeds,
        },
        "xmark": {"owner": xinfo, "other_key": oinfo},
        "tau": tau,
        "query_ids": queries.ids,
        "quality": quality,
        "accuracy": accuracy_out,
        "summary": summary,
        "runs": runs,
        "environment": environment(torch=torch.__version__),
    }
    out["aims"] = aims(out)
    out["timing"] = timing | {"total_s": time.perf_counter() - t_start}
    print_watermark(out, console)
    if json_path is not None:
        write_json(out, json_path, console)
        examples = {"clean": qc[:3], **{n: qm[n][:3] for n in METHODS}}
        save_figure(out, examples, Path(json_path).with_suffix(".png"))
    return out


def aims(out: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per method, each aim of the issue with the value that decides it and ``met``."""
    res: dict[str, dict[str, Any]] = {}
    for n in METHODS:
        s = out["summary"][n]
        mal = [r for c in MALICIOUS for r in out["runs"][n][c]]
        ind = out["runs"][n]["independent_model"]
        q = out["quality"][n]["train"]
        pts = out["accuracy"][n]["points_vs_clean"]
        worst = f"min WSR {min(r['wsr'] for r in mal):.2f}, max p {max(r['p_value'] for r in mal):.1e}"
        trig = s["independent_trigger"]
        res[n] = {
            "malicious_claimed": {
                "value": worst,
                "met": all(r["wsr"] >= AIMS["wsr"] and r["p_value"] < AIMS["alpha"] for r in mal),
            },
            "no_false_claim": {
                "value": f"{s['independent_model']['claims']}/{len(ind)} Independent-Model, "
                f"{trig['claims']}/{trig['runs']} Independent-Trigger",
                "met": len(ind) >= MIN_INDEPENDENT_RUNS
                and s["independent_model"]["claims"] == 0
                and s["independent_trigger"]["claims"] == 0,
            },
            "image_quality": {
                "value": f"PSNR {q['psnr_db']:.1f} dB, SSIM {q['ssim']:.4f}",
                "met": q["psnr_db"] >= AIMS["psnr_db"] and q["ssim"] >= AIMS["ssim"],
            },
            "clean_accuracy": {"value": f"{pts:+.1f} points", "met": abs(pts) <= AIMS["accuracy_points"]},
        }
    return res


CASE_LABELS = {
    "malicious": "Malicious",
    "resolution": "Malicious, {res} px",
    "architecture": "Malicious, {arch}",
    "finetune": "Malicious, fine-tuned",
    "prune": "Malicious, pruned {prune:.0%}",
    "jpeg": "Malicious, JPEG q{q}",
    "independent_model": "Independent-Model",
    "independent_trigger": "Independent-Trigger",
}


def print_watermark(out: dict[str, Any], console: Any = None) -> None:
    """The method x scenario table, then image quality, clean accuracy and the aims."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    st = out["settings"]
    fmt = {
        "res": st["resolution"],
        "arch": st["other_arch"],
        "prune": st["prune_amount"],
        "q": st["jpeg_quality"],
    }
    table = Table(
        title=f"Ownership verification, {out['source'].get('name', 'data')} {st['size']} px, target "
        f"{out['classes'][out['target']]}, {st['fraction']:.0%} marked, m={st['m']} (medians over runs)"
    )
    for col in ("method", "scenario", "tau", "WSR", "ΔP", "p-value", "claims", "label-only", "expected"):
        table.add_column(col, justify="right")
    for n in METHODS:
        for c in CASES:
            s = out["summary"][n].get(c)
            if s is None:
                continue
            want = c in MALICIOUS
            ok = s["claims"] == s["runs"] if want else s["claims"] == 0
            table.add_row(
                LABELS[n],
                CASE_LABELS[c].format(**fmt),
                f"{out['tau'][n]['tau']:.3f}",
                f"{100 * s['wsr_median']:.1f}%",
                f"{s['delta_p_median']:+.3f}",
                f"{s['p_value_median']:.1e}",
                f"{s['claims']}/{s['runs']}",
                f"{s['label_only_claims']}/{s['runs']}",
                ("claim" if want else "no claim") + (" ✓" if ok else " ✗"),
            )
        table.add_section()
    console.print(table)
    acc = out["accuracy"]
    for n in METHODS:
        q = out["quality"][n]["train"]
        console.print(
            f"{LABELS[n]}: marked vs original ({q['n']} training images) PSNR {q['psnr_db']:.2f} dB "
            f"(min {q['psnr_db_min']:.2f}), SSIM {q['ssim']:.4f} (min {q['ssim_min']:.4f}), "
            f"L-inf {255 * q['linf']:.0f}/255; clean test accuracy trained on marked set "
            f"{100 * acc[n]['mean']:.1f}% vs clean {100 * acc['clean_models']['mean']:.1f}% "
            f"({acc[n]['points_vs_clean']:+.1f} points)"
        )
    aims_t = Table(
        title="Aims: WSR >= 95% and p < 0.01 in every Malicious case; no false claim in >= 10 "
        "Independent-Model runs (nor Independent-Trigger); PSNR >= 40 dB and SSIM >= 0.98; "
        "clean accuracy within 2 points"
    )
    aims_t.add_column("aim")
    for n in METHODS:
        aims_t.add_column(LABELS[n])
    for aim in ("malicious_claimed", "no_false_claim", "image_quality", "clean_accuracy"):
        cells = []
        for n in METHODS:
            a = out["aims"][n][aim]
            cells.append(f"{'met' if a['met'] else 'missed'}: {a['value']}")
        aims_t.add_row(aim.replace("_", " "), *cells)
    console.print(aims_t)


def save_figure(out: dict[str, Any], examples: dict[str, np.ndarray], path: Path) -> None:
    """WSR and -log10 p (median) per case and method; clean, marked and |diff| (x10) examples."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(14, 8), dpi=110)
    grid = fig.add_gridspec(2, 1 + 2 * len(METHODS), height_ratios=[1.2, 1])
    a, b = fig.add_subplot(grid[0, : len(METHODS) + 1]), fig.add_subplot(grid[0, len(METHODS) + 1 :])
    cases = [c for c in CASES if all(c in out["summary"][n] for n in METHODS)]
    x = np.arange(len(cases))
    w = 0.8 / len(METHODS)
    for j, n in enumerate(METHODS):
        s = out["summary"][n]
        a.bar(x + j * w, [100 * s[c]["wsr_median"] for c in cases], w, label=LABELS[n])
        b.bar(x + j * w, [-np.log10(max(s[c]["p_value_median"], 1e-300)) for c in cases], w, label=LABELS[n])
    a.axhline(100 * AIMS["wsr"], ls="--", c="gray")
    b.axhline(-np.log10(AIMS["alpha"]), ls="--", c="gray", label="p = 0.01")
    for ax, ylabel in ((a, "WSR % (median)"), (b, "-log10 p (median)")):
        ax.set_xticks(x + w, [c.replace("_", "\n") for c in cases], fontsize=7)
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=7)
    clean = examples["clean"][0]
    cols = [("clean", clean)]
    for n in METHODS:
        cols += [
            (LABELS[n], examples[n][0]),
            (f"|{LABELS[n]} - clean| x10", np.abs(examples[n][0] - clean) * 10),
        ]
    for j, (title, img) in enumerate(cols[: 1 + 2 * len(METHODS)]):
        ax = fig.add_subplot(grid[1, j])
        ax.imshow(np.clip(img, 0, 1), cmap="gray", vmin=0, vmax=1)
        ax.set_title(title, fontsize=7)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
