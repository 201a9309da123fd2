"""The fusion commands: ``prosima fuse MRI OTHER --out F`` with the shipped model, ``prosima fusion
train`` (the shipped weights' recipe) and ``prosima fusion chain`` (proof-of-useful-work rounds).

Exit status: 0 success, 1 a chain round with no winner, 2 an error (bad input, nothing written).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

fusion_app = typer.Typer(
    help="BMIF: multimodal fusion, under encryption, trained by useful work.", no_args_is_help=True
)


def _fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code=2)


def fuse_command(
    mri: Path = typer.Argument(..., help="The MRI (grayscale PNG)."),
    other: Path = typer.Argument(..., help="The co-registered CT (grayscale) or PET / SPECT (colour) PNG."),
    out: Path = typer.Option(..., "--out", help="The fused PNG to write (refused if it exists)."),
    model: Path | None = typer.Option(None, help="Fusion weights (default: the shipped model)."),
) -> None:
    """Fuse an MRI with a CT, PET or SPECT image; colour sources keep their chroma (YCbCr)."""
    import numpy as np
    from PIL import Image

    from prosima.fusion.checkpoint import load_fusion
    from prosima.fusion.colour import recolour
    from prosima.fusion.data import FusionDataError, load_pair
    from prosima.fusion.train import fuse

    if out.exists():
        raise _fail(f"{out} exists; refusing to overwrite it")
    try:
        pair = load_pair(mri, other)
        net, _ = load_fusion(model)
    except (FusionDataError, ValueError, FileNotFoundError) as exc:
        raise _fail(str(exc)) from None
    rgb = recolour(fuse(net, pair.stacked()), pair.chroma)
    px = np.round(rgb * 255).astype(np.uint8)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    Image.fromarray(px).save(tmp, format="PNG")
    tmp.replace(out)
    typer.echo(
        f"{out}: fused {'colour' if pair.chroma is not None else 'grayscale'} {px.shape[1]}x{px.shape[0]}"
    )


@fusion_app.command("train")
def train_command(
    out: Path = typer.Option(Path("out/fusion/fusion.pt"), help="Where to write the weights."),
    data: Path | None = typer.Option(
        None, help="Harvard AANLIB root (default ../shared/data/fusion/harvard_aanlib)."
    ),
    steps: int = typer.Option(1500, help="Adam steps (the shipped weights: 1500)."),
    seed: int = typer.Option(0, help="Seed of the split and of training."),
) -> None:
    """Train the fusion network on the training split of all three modality pairs."""
    import numpy as np
    import torch

    from prosima.fusion.checkpoint import save_fusion, weights_digest
    from prosima.fusion.data import PAIRS, FusionDataError, load_pairs, split_pairs
    from prosima.fusion.train import FusionTrainConfig, train_fusion

    torch.set_num_threads(2)
    try:
        sets = {p: load_pairs(data, p) for p in PAIRS}
    except FusionDataError as exc:
        raise _fail(str(exc)) from None
    splits = {p: split_pairs(len(s.names), seed) for p, s in sets.items()}
    train = np.concatenate([s.sources[splits[p].train] for p, s in sets.items()])
    model, info = train_fusion(train, FusionTrainConfig(steps=steps, seed=seed), log=typer.echo)
    info["split"] = {
        p: {"seed": seed, "train": [sets[p].names[i] for i in sp.train]} for p, sp in splits.items()
    }
    save_fusion(out, model, info)
    typer.echo(f"{out}: sha256 {weights_digest(model)} ({info['seconds']:.0f} s)")


@fusion_app.command("chain")
def chain_command(
    ledger: Path = typer.Option(Path("out/fusion/chain"), help="Ledger directory (created if absent)."),
    nodes: int = typer.Option(8, help="Consensus nodes (each trains the model every round)."),
    rounds: int = typer.Option(3, help="Rounds of proof of useful work."),
    byzantine: str = typer.Option("", help="Cheating nodes, e.g. '2:copy,5:inflated_score,7:bad_reveal'."),
    seed: int = typer.Option(0, help="Seed of everything random."),
    pair: str = typer.Option(
        "ct", help="Modality pair whose training split the nodes learn: ct, pet, spect."
    ),
    data: Path | None = typer.Option(
        None, help="Harvard AANLIB root (default ../shared/data/fusion/harvard_aanlib)."
    ),
    json_path: Path | None = typer.Option(None, "--json", help="Write the rounds as JSON."),
) -> None:
    """Run proof-of-useful-work rounds: nodes train, commit, reveal; validators re-score; blocks."""
    from rich.console import Console
    from rich.table import Table

    from prosima.fusion.data import FusionDataError
    from prosima.ledger.errors import LedgerError
    from prosima.pipelines.fusion_chain import run_chain

    try:
        summary = run_chain(ledger, nodes, rounds, byzantine or None, seed, data_root=data, pair=pair)
    except (FusionDataError, LedgerError, ValueError, FileNotFoundError) as exc:
        raise _fail(str(exc)) from None
    table = Table(title=f"Proof of useful work: {nodes} nodes, {rounds} rounds")
    for col in (
        "round",
        "height",
        "winner",
        "score",
        "threshold",
        "refused",
        "train s",
        "validate s",
        "total s",
    ):
        table.add_column(col, justify="right")
    for r in summary["rounds"]:
        refused = ", ".join(f"{x['node']}:{x['code']}" for x in r["refusals"]) or "-"
        winner = "-" if r["winner"] is None else str(r["winner"])
        table.add_row(
            str(r["round"]),
            str(r["height"]),
            winner,
            f"{r['score']:.4f}" if r["score"] is not None else "-",
            f"{r['threshold']:.4f}",
            refused,
            *(f"{r['seconds'].get(k, 0.0):.1f}" for k in ("train", "validate", "total")),
        )
    console = Console(width=None if sys.stdout.isatty() else 160)
    console.print(table)
    for r in summary["rounds"]:
        for x in r["refusals"]:
            console.print(f"round {r['round']}, node {x['node']} refused ({x['code']}): {x['reason']}")
    typer.echo(
        f"chain verification: {'ok' if summary['chain_ok'] else 'FAILED: ' + str(summary['chain_fault'])}"
    )
    if summary.get("audit"):
        typer.echo("audit: " + "; ".join(summary["audit"]))
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(summary, indent=2) + "\n")
    if not summary["chain_ok"] or any(r["winner"] is None for r in summary["rounds"]):
        raise typer.Exit(code=1)
