"""``prosima ledger``: init, append, show, verify, proof, check-proof, head, witness, stats, network.

Exit codes: 0 success; 1 a verification failed (tampered store, fault in the chain, proof that
does not verify); 2 bad input or usage. With ``--json -`` the result, or the error, is printed as
JSON (keys sorted) instead of the text.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from prosima.cli.group import command_group
from prosima.cli.options import JsonOption, LedgerOption, TrustedRegistryOption
from prosima.cli.output import Output

app = command_group("Signed blocks, a Merkle log with proofs, and their audit.")
HERE = Path(".")


def _output(json_path: Path | None) -> Output:
    return Output(json_path, sort_keys=True)


def _pretty(payload: bytes, indent: str = "  ") -> str:
    """The payload for people: decoded CBOR as indented JSON, else UTF-8 text, else hex."""
    from prosima.app.ledger_queries import decoded_payload

    decoded = decoded_payload(payload)
    if decoded is not None:
        text = json.dumps(decoded, indent=2, sort_keys=True)
    else:
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError:
            text = payload.hex()
    return "\n".join(indent + line for line in text.splitlines() or [""])


@app.command("init")
def init_command(
    directory: Annotated[Path, typer.Argument(help="New (or empty) directory for the ledger.")],
    nodes: Annotated[int, typer.Option("--nodes", min=1, max=1024, help="Node identities to create.")] = 4,
    json_path: JsonOption = None,
) -> None:
    """Create node keys (keys/, mode 0600), their registry and an empty store."""
    from prosima.app.ledger_queries import init_ledger

    out = _output(json_path)
    made = init_ledger(directory, nodes)
    out.result(f"initialised {directory}: {nodes} nodes, quorum {made.threshold} of {nodes}")
    out.json(made.to_json())


@app.command("append")
def append_command(
    files: Annotated[
        list[Path] | None,
        typer.Argument(help="Payload files, one transaction each; none or '-' reads stdin."),
    ] = None,
    ledger: LedgerOption = HERE,
    kind: Annotated[str, typer.Option("--kind", help="Transaction kind, e.g. image.anchored.")] = "data",
    key: Annotated[str, typer.Option("--key", help="Payload key as hex (e.g. a fingerprint root).")] = "",
    json_path: JsonOption = None,
) -> None:
    """Append payloads as one block, signed by a quorum of the local node keys."""
    from prosima.app.ledger_queries import append_payloads

    out = _output(json_path)
    block = append_payloads(ledger, files or [], kind, key)
    out.result("\n".join([f"block {block.height} {block.block_hash}", *(f"tx {i}" for i in block.tx_ids)]))
    out.json(block.to_json())


@app.command("show")
def show_command(
    height: Annotated[int | None, typer.Argument(help="Block height (default: the last block).")] = None,
    tx: Annotated[str | None, typer.Option("--tx", help="Show one transaction by id (hex).")] = None,
    key: Annotated[str | None, typer.Option("--key", help="List transactions with this payload key.")] = None,
    ledger: LedgerOption = HERE,
    json_path: JsonOption = None,
) -> None:
    """Show a block, a transaction, or the transactions under a payload key."""
    from prosima.app.ledger_queries import MISSING_TX, block_view, find_transaction, transactions_by_key
    from prosima.ledger.log.directory import Ledger

    out = _output(json_path)
    with Ledger.open(ledger) as led:
        if tx is not None:
            found = find_transaction(led, tx, "--tx", MISSING_TX)
            shown = {k: v for k, v in found.fields().items() if k not in ("payload", "payload_decoded")}
            lines = [
                *(f"{k}: {v}" for k, v in shown.items()),
                f"height: {found.height}",
                "payload:",
                _pretty(found.transaction.payload),
            ]
            out.result("\n".join(lines))
            out.json(found.to_json())
        elif key is not None:
            listing = transactions_by_key(led, key)
            rows = [f"tx {i} height {h}" for i, h, _ in listing.transactions]
            out.result("\n".join(rows) or "no transactions")
            out.json(listing.to_json())
        else:
            view = block_view(led, height)
            lines = [f"{k}: {v}" for k, v in view.header().items()]
            lines.append(f"quorum: {len(view.block.qc.signatures)} signatures")
            for t, raw in zip(view.transactions(), view.block.txs, strict=True):
                lines.append(f"tx {t['id']} {t['kind']} {t['payload_size']} bytes at {t['time_iso']}")
                lines.append(_pretty(raw.payload, indent="    "))
            out.result("\n".join(lines))
            out.json(view.to_json())


@app.command("verify")
def verify_command(
    ledger: LedgerOption = HERE,
    registry: TrustedRegistryOption = None,
    json_path: JsonOption = None,
) -> None:
    """Verify every block, hash and signature; exit 1 naming the first fault."""
    from prosima.app.ledger_queries import verify_ledger

    out = _output(json_path)
    report = verify_ledger(ledger, registry)
    if report.ok:
        out.result(f"ok: {report.blocks} blocks, {report.transactions} transactions verified")
    else:
        out.result(f"FAULT at {report.fault}", err=True)
    out.json(report.to_json())
    if not report.ok:
        raise typer.Exit(1)


@app.command("proof")
def proof_command(
    tx: Annotated[str | None, typer.Option("--tx", help="Inclusion proof for this transaction id.")] = None,
    from_height: Annotated[
        int | None, typer.Option("--from-height", help="Consistency proof from the tree head at this height.")
    ] = None,
    to_height: Annotated[
        int | None, typer.Option("--to-height", help="... to the tree head at this height (default: last).")
    ] = None,
    out_path: Annotated[
        Path | None, typer.Option("--out", "-o", help="Also write the proof to this file.")
    ] = None,
    ledger: LedgerOption = HERE,
    json_path: JsonOption = None,
) -> None:
    """Print an inclusion proof with the certified tree head (or a consistency proof) as JSON."""
    from prosima.app.ledger_queries import MISSING_TX, consistency_proof, inclusion_proof
    from prosima.errors import InputError
    from prosima.ledger.log.directory import Ledger
    from prosima.ledger.log.proof import dumps

    out = _output(json_path)
    if (tx is None) == (from_height is None):
        raise InputError("give exactly one of --tx or --from-height")
    with Ledger.open(ledger) as led:
        if tx is not None:
            doc = inclusion_proof(led, tx, "--tx", MISSING_TX)
        else:
            assert from_height is not None
            doc = consistency_proof(led, from_height, to_height)
    text = dumps(doc)
    if out_path is not None:
        out_path.write_text(text + "\n")
    out.result(text)
    out.json(doc)


@app.command("check-proof")
def check_proof_command(
    file: Annotated[Path, typer.Argument(help="Proof JSON file, or '-' for stdin.")],
    registry: TrustedRegistryOption = None,
    json_path: JsonOption = None,
) -> None:
    """Check a proof offline, without the store; exit 1 when it does not verify. Tree heads must
    carry a quorum certificate of the pinned registry (or, unpinned, of the one the proof lists)."""
    from prosima.app.ledger_queries import check_proof

    out = _output(json_path)
    result = check_proof(file, registry)
    if result.ok:
        trust = "keys pinned" if result.pinned else "keys taken from the document (use --registry to pin)"
        out.result(f"ok: {result.kind} verifies; {trust}")
    else:
        out.result("INVALID: " + "; ".join(result.problems), err=True)
    out.json(result.to_json())
    if not result.ok:
        raise typer.Exit(1)


@app.command("head")
def head_command(
    height: Annotated[int | None, typer.Argument(help="Block height (default: the last block).")] = None,
    out_path: Annotated[
        Path | None, typer.Option("--out", "-o", help="Also write the head to this file.")
    ] = None,
    ledger: LedgerOption = HERE,
    json_path: JsonOption = None,
) -> None:
    """Print the certified tree head (keep it: 'prosima verify --since' and 'witness' compare
    against it to detect a rollback or a fork)."""
    from prosima.app.ledger_queries import tree_head
    from prosima.ledger.log.directory import Ledger

    out = _output(json_path)
    with Ledger.open(ledger) as led:
        head = tree_head(led, height)
    text = json.dumps(head, indent=2, sort_keys=True)
    if out_path is not None:
        out_path.write_text(text + "\n")
    out.result(text)
    out.json(head)


@app.command("witness")
def witness_command(
    state: Annotated[
        Path, typer.Option("--state", help="The witness's file of heads seen (made on first use).")
    ],
    ledger: LedgerOption = HERE,
    registry: TrustedRegistryOption = None,
    json_path: JsonOption = None,
) -> None:
    """Check that the log only grew since this witness last saw it, then record its head; exit 1
    (recording nothing) when it shrank, forked or changed its node keys."""
    from prosima.app.ledger_queries import witness_ledger

    out = _output(json_path)
    seen = witness_ledger(ledger, state, registry)
    if seen.ok:
        first = " (first sight; registry pinned)" if seen.first_sight else ""
        out.result(f"ok: the log grew from {seen.seen} to {seen.now} entries, consistently{first}")
    else:
        out.result("REFUSED: " + "; ".join(seen.problems), err=True)
    out.json(seen.to_json())
    if not seen.ok:
        raise typer.Exit(1)


@app.command("stats")
def stats_command(ledger: LedgerOption = HERE, json_path: JsonOption = None) -> None:
    """Blocks, transactions, bytes on disk and bytes per transaction."""
    from prosima.app.ledger_queries import ledger_stats
    from prosima.ledger.log.directory import Ledger

    out = _output(json_path)
    with Ledger.open(ledger) as led:
        stats = ledger_stats(led)
    out.result("\n".join(f"{k}: {v}" for k, v in stats.items() if k != "ok"))
    out.json(stats)


@app.command("network")
def network_command(
    nodes: Annotated[
        int | None,
        typer.Option("--nodes", min=1, max=256, help="Nodes (default: the MPI ranks, else 20)."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of overlay, keys, workload and faults.")] = 0,
    images: Annotated[int, typer.Option("--images", min=0, help="Anchoring transactions to commit.")] = 200,
    batch: Annotated[int, typer.Option("--batch", min=1, help="Images per block.")] = 1,
    system: Annotated[str, typer.Option("--system", help="gft (ours), random or full.")] = "gft",
    hubs: Annotated[int, typer.Option("--hubs", min=0, help="Top-degree nodes keeping the full ledger.")] = 3,
    replication: Annotated[int, typer.Option("--replication", "-r", min=1, help="Copies of each shard.")] = 3,
    erasure: Annotated[
        str | None, typer.Option("--erasure", help="Erasure-code shards as 'k,m' instead of copying them.")
    ] = None,
    voting: Annotated[str, typer.Option("--voting", help="count, or degree-capped.")] = "count",
    byzantine: Annotated[
        str,
        typer.Option(
            "--byzantine",
            help="Faults, e.g. '2xequivocate@hub,silent@any,crash-leader@3:5' "
            "(silent, garbage, double-sign, equivocate, crash-leader, random).",
        ),
    ] = "",
    backend: Annotated[
        str, typer.Option("--backend", help="inproc, mpi, or auto (mpi when started by mpirun).")
    ] = "auto",
    shards: Annotated[int, typer.Option("--shards", min=1, max=4096, help="Shard ids per image.")] = 16,
    shard_bytes: Annotated[int, typer.Option("--shard-bytes", min=0, help="Payload bytes per shard.")] = 4096,
    json_path: JsonOption = None,
) -> None:
    """Run N consensus nodes over a stream of anchoring transactions; report commits, faults, timings
    and storage. Under 'mpirun -n P' the nodes are spread over the P ranks (one each by default)."""
    from prosima.app.network import NetworkRun, simulate_network
    from prosima.ledger.sim.network import format_report

    run = NetworkRun(
        nodes,
        seed,
        images,
        batch,
        system,
        hubs,
        replication,
        erasure,
        voting,
        byzantine,
        backend,
        shards,
        shard_bytes,
    )
    report = simulate_network(run)
    if report is None:  # an MPI rank other than 0
        return
    out = Output(json_path)
    out.result(format_report(report))
    if not report["faulty_tolerated"]:
        out.warn("warning: the faulty nodes exceed what the protocol tolerates; no guarantees")
    out.json(report)
    if not report["agreement"] or report["commits"]["stalled"]:
        raise typer.Exit(1)
