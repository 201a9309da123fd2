"""``prosima train`` (one model from a config) and ``prosima train-federated`` (Protocol 1)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from prosima.cli.options import JsonOption, LedgerOption, QuietOption
from prosima.cli.output import Output

OverridesOption = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a field: section.field=VALUE (VALUE is YAML); repeatable."),
]


def train_command(
    config: Annotated[
        Path, typer.Option("--config", help="YAML config (see configs/; every field documented).")
    ],
    overrides: OverridesOption = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue from the checkpoint in the output folder.")
    ] = False,
    steps: Annotated[int | None, typer.Option("--steps", help="Total steps (overrides train.steps).")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Output folder (overrides out_dir).")] = None,
    export: Annotated[
        str | None,
        typer.Option(
            "--export", help="After training, export the best weights under this name, with a model card."
        ),
    ] = None,
    weights_dir: Annotated[
        Path | None,
        typer.Option("--weights-dir", help="Where --export writes (default: the package's weights folder)."),
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    json_path: JsonOption = None,
    quiet: QuietOption = False,
) -> None:
    """Train an encoder or a restoration generator from a config; checkpoints, validation, resume.

    Prints the summary as JSON."""
    from prosima.app.training import train_from_config

    output = Output(json_path, quiet)
    summary = train_from_config(
        config,
        overrides or [],
        resume=resume,
        steps=steps,
        out=out,
        export=export,
        weights_dir=weights_dir,
        progress=progress and not quiet,
    )
    output.result(json.dumps(summary, indent=2))
    output.json(summary)


def train_federated_command(
    config: Annotated[
        Path, typer.Option("--config", help="YAML config with a 'federated' section (see configs/).")
    ],
    ledger: LedgerOption,
    overrides: OverridesOption = None,
    out: Annotated[Path | None, typer.Option("--out", help="Output folder (overrides out_dir).")] = None,
    json_path: JsonOption = None,
) -> None:
    """Protocol 1: FedAvg over sites on NVIDIA FLARE's simulator; every round's weights anchored.

    --json writes the per-round summary."""
    from prosima.app.training import train_federated

    output = Output(json_path)
    summary = train_federated(config, ledger, overrides or [], out=out)
    for r in summary["rounds"]:
        v = r["validation"]
        output.result(
            f"round {r['round']}: val PSNR {v['val_psnr']:.2f} dB, weights {r['digest'][:16]}, "
            f"anchored tx {r['tx'][:16]} at height {r['height']}"
        )
    output.json(summary)
