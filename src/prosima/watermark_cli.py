"""The ``watermark`` commands: ``train`` an X-Mark marker, ``embed`` it in a dataset (and commit the
key to a ledger), ``verify`` a suspicious model against a key.

Exit status: 0 success (for ``verify``: ownership is claimed), 1 a negative verdict, 2 an error.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import typer

watermark_app = typer.Typer(
    help="X-Mark: clean-label dataset watermarks and black-box ownership verification.", no_args_is_help=True
)


def _fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code=2)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    return obj


def _write_json(obj: object, path: Path | None) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(_jsonable(obj), indent=2) + "\n")


def _errors() -> tuple[type[BaseException], ...]:
    from prosima.ledger.errors import LedgerError
    from prosima.watermark.classifier import ModelFileError
    from prosima.watermark.data import DataError
    from prosima.watermark.key import WatermarkKeyFileError
    from prosima.watermark.verify import ModelOutputError

    return (
        DataError,
        WatermarkKeyFileError,
        ModelFileError,
        ModelOutputError,
        LedgerError,
        ValueError,
        FileNotFoundError,
        FileExistsError,
    )


def _target(classes: list[str], target: str | None) -> int:
    if target is None:
        return 0
    if target in classes:
        return classes.index(target)
    if target.isdigit() and int(target) < len(classes):
        return int(target)
    raise ValueError(f"--target {target!r} is not one of the classes {classes}")


def _load(dataset: Path, size: int | None, split_seed: int):  # noqa: ANN202
    from prosima.watermark.data import load_dataset, split_by_file

    data = load_dataset(dataset, size=size)
    return data, split_by_file(data.ids, data.labels, seed=split_seed)


SIZE_HELP = "Down-sample PNG images to SIZE x SIZE (0: as stored); ignored for .npz."


@watermark_app.command("train")
def train_command(
    dataset: Path = typer.Argument(..., help="A folder of class folders of PNGs, or a PneumoniaMNIST .npz."),
    out: Path = typer.Option(..., "--out", help="Folder for surrogate.pt, generator.pt and train.json."),
    target: str | None = typer.Option(None, help="Target class (name or index); default: the first."),
    size: int = typer.Option(128, help=SIZE_HELP),
    eps: int = typer.Option(8, help="L-infinity budget of the mark, in 1/255 steps."),
    mask_fraction: float = typer.Option(
        0.25, help="Fraction of pixels (the most salient) the mark may touch."
    ),
    arch: str = typer.Option("cnn", help="Surrogate architecture: cnn or resnet."),
    surrogate_epochs: int = typer.Option(10, help="Surrogate training epochs."),
    epochs: int = typer.Option(10, help="Generator training epochs."),
    seed: int = typer.Option(0, help="Seed of the surrogate and generator training."),
    split_seed: int = typer.Option(0, help="Seed of the split by file."),
) -> None:
    """Train the surrogate classifier and the mark generator on the training split."""
    from prosima.watermark.classifier import TrainConfig
    from prosima.watermark.pipeline import train_xmark
    from prosima.watermark.train import GeneratorConfig

    try:
        data, split = _load(dataset, size or None, split_seed)
        t = _target(data.classes, target)
        gcfg = GeneratorConfig(eps=eps / 255, mask_fraction=mask_fraction, epochs=epochs, seed=seed)
        scfg = TrainConfig(epochs=surrogate_epochs, seed=seed)
        _, info = train_xmark(data, split, t, gcfg, scfg, arch=arch, out=out, log=typer.echo)
    except _errors() as exc:
        raise _fail(str(exc)) from None
    last = info["generator"]["history"][-1]
    typer.echo(
        f"surrogate test accuracy {info['surrogate']['test_accuracy']:.3f}; generator: surrogate WSR "
        f"{last['surrogate_wsr']:.3f}, 1-SSIM {last['ssim']:.4f}; written to {out}"
    )


@watermark_app.command("embed")
def embed_command(
    dataset: Path = typer.Argument(..., help="A folder of class folders of PNGs, or a PneumoniaMNIST .npz."),
    out: Path = typer.Option(..., "--out", help="Folder for release/ (the marked training split) and key/."),
    ledger: Path | None = typer.Option(None, "--ledger", help="Commit the key to this ledger directory."),
    marker: Path | None = typer.Option(
        None, "--marker", help="Output of 'watermark train' (X-Mark); default: train one now into OUT/marker."
    ),
    method: str = typer.Option("xmark", help="xmark, badnets or blended."),
    target: str | None = typer.Option(None, help="Target class (without --marker); default: the first."),
    size: int = typer.Option(128, help=SIZE_HELP + " Without --marker."),
    fraction: float = typer.Option(0.1, help="Fraction of the target-class training images to mark."),
    queries: int = typer.Option(100, help="Held-out non-target images kept for verification."),
    alpha_blend: float = typer.Option(0.1, "--blend-alpha", help="Blended: weight of the pattern."),
    seed: int = typer.Option(0, help="Seed of which images are marked and which are queries."),
    split_seed: int = typer.Option(0, help="Seed of the split by file (without --marker)."),
    calibrate: bool = typer.Option(
        True, help="X-Mark: set tau from a clean reference model trained here (seed + 1000)."
    ),
    json_path: Path | None = typer.Option(None, "--json", help="Write the key's summary as JSON."),
) -> None:
    """Mark a fraction of the target class (labels untouched), write the release and the key, and
    commit the key to the ledger."""
    from prosima.watermark.baselines import BadNets, Blended
    from prosima.watermark.classifier import TrainConfig, probability_fn, train_classifier
    from prosima.watermark.embed import embed, xmark_from_files

    try:
        files: dict[str, Path] = {}
        references: list = []
        seeds_ref: dict[str, int] = {}
        seeds: dict[str, int] = {}
        if method == "xmark":
            if marker is None:
                typer.echo(f"no --marker: training one into {out / 'marker'}")
                train_command(dataset, out / "marker", target, size, 8, 0.25, "cnn", 10, 10, seed, split_seed)
                marker = out / "marker"
            info = json.loads((marker / "train.json").read_text())
            size = int(info["dataset"].get("size") or 0)
            split_seed = int(info["split"]["seed"])
            files = {"generator": marker / "generator.pt", "surrogate": marker / "surrogate.pt"}
            mark = xmark_from_files(
                files["generator"], files["surrogate"], info["generator"]["config"]["mask_fraction"]
            )
            data, split = _load(dataset, size or None, split_seed)
            if data.classes != info["classes"]:
                raise ValueError(
                    f"{dataset} has classes {data.classes}; the marker was trained on {info['classes']}"
                )
            t = int(info["target"])
            if calibrate:
                sur = info["surrogate"]
                rcfg = TrainConfig(**(sur["config"] | {"seed": seed + 1000}))
                train = data.subset(split.train)
                ref = train_classifier(
                    train.images,
                    train.labels,
                    sur["arch"],
                    rcfg,
                    n_classes=len(data.classes),
                    width=sur["width"],
                )
                references = [probability_fn(ref)]
                seeds_ref = {"reference": seed + 1000}
            seeds = {
                "surrogate": info["surrogate"]["config"]["seed"],
                "generator": info["generator"]["config"]["seed"],
            }
        elif method in ("badnets", "blended"):
            data, split = _load(dataset, size or None, split_seed)
            t = _target(data.classes, target)
            mark = BadNets() if method == "badnets" else Blended(alpha=alpha_blend, seed=seed)
        else:
            raise ValueError(f"--method {method!r}: expected xmark, badnets or blended")
        marked, key, key_path = embed(
            data,
            split,
            mark,
            out,
            target=t,
            fraction=fraction,
            seed=seed,
            queries=queries,
            marker_files=files,
            extra_seeds={k: int(v) for k, v in (seeds | seeds_ref).items()},
            references=references,
        )
        summary: dict[str, Any] = {
            "key": str(key_path),
            "digest": key.digest(),
            "method": key.method,
            "target": data.classes[t],
            "marked": len(marked.marked),
        }
        if ledger is not None:
            from prosima.ledger.log.directory import Ledger
            from prosima.provenance.watermark_keys import commit_key

            with Ledger.open(ledger) as led:
                summary["ledger"] = commit_key(led, key)
    except (*_errors(), KeyError, OSError) as exc:
        raise _fail(str(exc)) from None
    if "tau_floor" in key.verify:
        typer.echo(f"tau calibrated on a clean reference model: {key.verify['tau']:.3f}")
    typer.echo(
        f"marked {summary['marked']} of the {data.classes[t]} training images ({method}); "
        f"release {out / 'release'}; key {key_path} digest {summary['digest']}"
    )
    if "ledger" in summary:
        typer.echo(f"key committed: tx {summary['ledger']['tx']} height {summary['ledger']['height']}")
    else:
        typer.secho("warning: no --ledger; the key is not committed", fg=typer.colors.YELLOW, err=True)
    _write_json(summary, json_path)


@watermark_app.command("verify")
def verify_command(
    model: Path = typer.Option(..., "--model", help="Suspicious classifier file ({arch, spec, state})."),
    key: Path = typer.Option(..., "--key", help="The owner's key.json."),
    ledger: Path | None = typer.Option(None, "--ledger", help="Also require the key to be committed here."),
    label_only: bool = typer.Option(False, help="Use predicted labels only (Wilcoxon signed-rank)."),
    tau: float | None = typer.Option(None, help="Margin of the test; default: the key's."),
    alpha: float | None = typer.Option(None, help="Significance level; default: the key's (0.01)."),
    json_path: Path | None = typer.Option(None, "--json", help="Write the verdict as JSON."),
) -> None:
    """Query the model on clean and marked held-out images; exit 0 only when ownership is claimed."""
    from prosima.watermark.classifier import label_fn, load_classifier, probability_fn
    from prosima.watermark.embed import Queries, load_marker
    from prosima.watermark.key import load_key
    from prosima.watermark.verify import DEFAULT_ALPHA, DEFAULT_TAU, verify_ownership

    try:
        k = load_key(key)
        marker = load_marker(k, key)
        q = Queries.load(k.file_path("queries", key))
        suspect = load_classifier(model)
        fn = label_fn(suspect) if label_only else probability_fn(suspect)
        verdict = verify_ownership(
            fn,
            q.images,
            marker(q.images),
            k.target,
            tau=k.verify.get("tau", DEFAULT_TAU) if tau is None else tau,
            alpha=k.verify.get("alpha", DEFAULT_ALPHA) if alpha is None else alpha,
            label_only=label_only,
        )
        verdict["key_digest"] = k.digest()
        if ledger is not None:
            from prosima.ledger.log.directory import Ledger
            from prosima.provenance.watermark_keys import check_key

            with Ledger.open(ledger) as led:
                verdict["ledger"] = check_key(led, k)
    except _errors() as exc:
        raise _fail(str(exc)) from None
    committed = verdict.get("ledger", {}).get("committed", True)
    claimed = verdict["claim"] and committed
    head = "OWNERSHIP CLAIMED" if claimed else "NO CLAIM"
    target = k.classes[k.target]
    extra = "" if verdict["delta_p"] is None else f", delta-P {verdict['delta_p']:+.3f}"
    v = verdict
    typer.echo(
        f"{head}: {v['test']} p = {v['p_value']:.3g} (alpha {v['alpha']}, tau {v['tau']}); "
        f"WSR {v['wsr']:.3f} vs clean {v['wsr_clean']:.3f} to '{target}'{extra}; n = {v['n']}"
    )
    if "ledger" in verdict:
        led = verdict["ledger"]
        if led["committed"]:
            typer.echo(f"  key {led['digest'][:16]} committed at height {led['height']} (tx {led['tx']})")
        else:
            typer.echo(f"  key NOT committed: {'; '.join(led['problems'])}")
    _write_json(verdict, json_path)
    if not claimed:
        raise typer.Exit(1)
