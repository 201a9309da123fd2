"""The ``prosima ledger`` command group: init, append, show, verify, proof, check-proof, stats, network.

Exit codes: 0 success; 1 a verification failed (tampered store, fault in the chain, proof that
does not verify); 2 bad input or usage. Errors go to stderr, or as ``{"ok": false, ...}`` JSON
with ``--json``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(help="Signed blocks, a Merkle log with proofs, and their audit.", no_args_is_help=True)

DirOption = Annotated[
    Path, typer.Option("--dir", "-d", envvar="PROSIMA_LEDGER_DIR", help="Ledger directory (made by 'init').")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
TrustedRegistryOption = Annotated[
    Path | None,
    typer.Option(
        "--registry",
        envvar="PROSIMA_TRUSTED_REGISTRY",
        help="Trust only the node keys in this pinned copy of registry.cbor (kept apart from the ledger).",
    ),
]


def _emit(as_json: bool, data: dict[str, Any], text: str | Callable[[], str]) -> None:
    if as_json:
        typer.echo(json.dumps(data, indent=2, sort_keys=True))
    else:
        typer.echo(text() if callable(text) else text)


def _fail(as_json: bool, code: int, message: str, **extra: Any) -> typer.Exit:
    if as_json:
        typer.echo(json.dumps({"ok": False, "error": message} | extra, indent=2, sort_keys=True))
    else:
        typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


@contextmanager
def _errors(as_json: bool) -> Iterator[None]:
    """Turn ledger errors into a clear message and an exit code."""
    from prosima.ledger.errors import LedgerError, TamperedStoreError

    try:
        yield
    except TamperedStoreError as exc:
        fault = getattr(exc.fault, "to_json", lambda: None)()
        raise _fail(as_json, 1, str(exc), fault=fault) from None
    except LedgerError as exc:
        raise _fail(as_json, 2, str(exc)) from None
    except sqlite3.Error as exc:
        raise _fail(as_json, 1, f"the store is corrupt or unreadable: {exc}") from None
    except OSError as exc:
        raise _fail(as_json, 2, f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")) from None


def _parse_hex(value: str, what: str, size: int | None = None) -> bytes:
    from prosima.ledger.errors import LedgerError

    try:
        data = bytes.fromhex(value)
    except ValueError:
        raise LedgerError(f"{what} must be hex, got {value!r}") from None
    if size is not None and len(data) != size:
        raise LedgerError(f"{what} must be {size} bytes ({2 * size} hex digits), got {len(data)}")
    return data


def _iso(time_us: int) -> str:
    """A ledger time (microseconds since the Unix epoch) in ISO 8601, UTC."""
    from datetime import UTC, datetime

    return datetime.fromtimestamp(time_us / 1e6, UTC).isoformat(timespec="microseconds")


def _decoded(payload: bytes) -> Any:
    """A payload as JSON-ready data: canonical CBOR decoded (bytes as hex), else None."""
    from prosima.ledger.errors import EncodingError
    from prosima.ledger.log.encoding import decode

    try:
        value = decode(payload)
    except EncodingError:
        return None

    def plain(v: Any) -> Any:
        if isinstance(v, bytes):
            return v.hex()
        if isinstance(v, dict):
            return {str(k): plain(x) for k, x in v.items()}
        if isinstance(v, list):
            return [plain(x) for x in v]
        return v

    return plain(value)


def _pretty(payload: bytes, indent: str = "  ") -> str:
    """The payload for people: decoded CBOR as indented JSON, else UTF-8 text, else hex."""
    decoded = _decoded(payload)
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
    as_json: JsonOption = False,
) -> None:
    """Create node keys (keys/, mode 0600), their registry and an empty store."""
    from prosima.ledger.log.directory import Ledger

    with _errors(as_json):
        ledger = Ledger.init(directory, nodes=nodes)
        ledger.close()
    data = {
        "ok": True,
        "directory": str(directory),
        "nodes": [k.node_id.hex() for k in ledger.keys],
        "threshold": ledger.registry.threshold,
    }
    _emit(
        as_json,
        data,
        f"initialised {directory}: {nodes} nodes, quorum {ledger.registry.threshold} of {nodes}",
    )


@app.command("append")
def append_command(
    files: Annotated[
        list[Path] | None,
        typer.Argument(help="Payload files, one transaction each; none or '-' reads stdin."),
    ] = None,
    directory: DirOption = Path("."),
    kind: Annotated[str, typer.Option("--kind", help="Transaction kind, e.g. image.anchored.")] = "data",
    key: Annotated[str, typer.Option("--key", help="Payload key as hex (e.g. a fingerprint root).")] = "",
    as_json: JsonOption = False,
) -> None:
    """Append payloads as one block, signed by a quorum of the local node keys."""
    from prosima.ledger.log.directory import Entry, Ledger
    from prosima.ledger.log.input_files import read_bounded
    from prosima.ledger.log.transaction import MAX_PAYLOAD

    with _errors(as_json):
        key_bytes = _parse_hex(key, "--key")
        payloads = [read_bounded(f, MAX_PAYLOAD, "payload") for f in files or [Path("-")]]
        with Ledger.open(directory) as ledger:
            block = ledger.append([Entry(p, kind, key_bytes) for p in payloads])
    ids = [tx.tx_id.hex() for tx in block.txs]
    data = {"ok": True, "height": block.header.height, "block_hash": block.hash.hex(), "tx_ids": ids}
    _emit(
        as_json,
        data,
        "\n".join([f"block {block.header.height} {block.hash.hex()}", *(f"tx {i}" for i in ids)]),
    )


@app.command("show")
def show_command(
    height: Annotated[int | None, typer.Argument(help="Block height (default: the last block).")] = None,
    tx: Annotated[str | None, typer.Option("--tx", help="Show one transaction by id (hex).")] = None,
    key: Annotated[str | None, typer.Option("--key", help="List transactions with this payload key.")] = None,
    directory: DirOption = Path("."),
    as_json: JsonOption = False,
) -> None:
    """Show a block, a transaction, or the transactions under a payload key."""
    from prosima.ledger.errors import LedgerError
    from prosima.ledger.log.directory import Ledger

    with _errors(as_json), Ledger.open(directory) as ledger:
        store = ledger.store
        if tx is not None:
            found, at, index = store.find_tx(_parse_hex(tx, "--tx", 32))
            view = found.to_json() | {
                "time_iso": _iso(found.time),
                "payload_decoded": _decoded(found.payload),
            }
            data = {"ok": True, "height": at, "leaf_index": index, "transaction": view}
            shown = {k: v for k, v in view.items() if k not in ("payload", "payload_decoded")}
            text = "\n".join(
                [
                    *(f"{k}: {v}" for k, v in shown.items()),
                    f"height: {at}",
                    "payload:",
                    _pretty(found.payload),
                ]
            )
        elif key is not None:
            rows = store.txs_by_key(_parse_hex(key, "--key"))
            data = {
                "ok": True,
                "key": key,
                "transactions": [{"id": i.hex(), "height": h, "leaf_index": s} for i, h, s in rows],
            }
            text = "\n".join(f"tx {i.hex()} height {h}" for i, h, _ in rows) or "no transactions"
        else:
            h = store.height if height is None else height
            if h < 0:
                raise _fail(as_json, 2, "the ledger has no blocks yet")
            try:
                block = store.block(h)
            except LedgerError as exc:
                raise _fail(as_json, 2, str(exc)) from None
            data = {
                "ok": True,
                "header": block.header.to_json() | {"time_iso": _iso(block.header.time)},
                "quorum": block.qc.to_json(),
                "transactions": [
                    {
                        "id": t.tx_id.hex(),
                        "kind": t.kind,
                        "key": t.key.hex(),
                        "time_iso": _iso(t.time),
                        "payload_size": len(t.payload),
                        "payload_decoded": _decoded(t.payload),
                    }
                    for t in block.txs
                ],
            }
            lines = [f"{k}: {v}" for k, v in data["header"].items()]
            lines.append(f"quorum: {len(block.qc.signatures)} signatures")
            for t, raw in zip(data["transactions"], block.txs, strict=True):
                lines.append(f"tx {t['id']} {t['kind']} {t['payload_size']} bytes at {t['time_iso']}")
                lines.append(_pretty(raw.payload, indent="    "))
            text = "\n".join(lines)
    _emit(as_json, data, text)


@app.command("verify")
def verify_command(
    directory: DirOption = Path("."),
    registry: TrustedRegistryOption = None,
    as_json: JsonOption = False,
) -> None:
    """Verify every block, hash and signature; exit 1 naming the first fault."""
    from prosima.ledger.errors import StoreError
    from prosima.ledger.log.directory import Ledger
    from prosima.ledger.log.registry import Registry

    with _errors(as_json):
        try:
            with Ledger.open(directory, verify="none") as ledger:
                if registry is not None and Registry.load(registry).digest != ledger.registry.digest:
                    raise _fail(as_json, 1, "registry: the ledger's node registry is not the trusted one")
                report = ledger.verify()
        except StoreError as exc:  # a store that cannot even be read is not whole
            raise _fail(as_json, 1, str(exc)) from None
    if report.ok:
        _emit(
            as_json,
            report.to_json(),
            f"ok: {report.blocks} blocks, {report.transactions} transactions verified",
        )
        return
    if as_json:
        typer.echo(json.dumps(report.to_json(), indent=2, sort_keys=True))
    else:
        typer.echo(f"FAULT at {report.fault}", err=True)
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
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Also write the proof to this file.")
    ] = None,
    directory: DirOption = Path("."),
    as_json: JsonOption = False,
) -> None:
    """Print an inclusion proof with the certified tree head (or a consistency proof) as JSON."""
    from prosima.ledger.log.directory import Ledger
    from prosima.ledger.log.proof import dumps

    if (tx is None) == (from_height is None):
        raise _fail(as_json, 2, "give exactly one of --tx or --from-height")
    with _errors(as_json), Ledger.open(directory) as ledger:
        if tx is not None:
            doc = ledger.inclusion_proof(_parse_hex(tx, "--tx", 32))
        else:
            doc = ledger.consistency_proof(from_height, to_height)
    text = dumps(doc)
    if out is not None:
        out.write_text(text + "\n")
    typer.echo(text)


@app.command("check-proof")
def check_proof_command(
    file: Annotated[Path, typer.Argument(help="Proof JSON file, or '-' for stdin.")],
    registry: TrustedRegistryOption = None,
    as_json: JsonOption = False,
) -> None:
    """Check a proof offline, without the store; exit 1 when it does not verify. Tree heads must
    carry a quorum certificate of the pinned registry (or, unpinned, of the one the proof lists)."""
    from prosima.ledger.log.input_files import MAX_DOCUMENT, read_bounded
    from prosima.ledger.log.proof import check_document
    from prosima.ledger.log.registry import Registry

    with _errors(as_json):
        text = read_bounded(file, MAX_DOCUMENT, "proof file")
        trusted = Registry.load(registry) if registry is not None else None
    result = check_document(text, registry=trusted)
    if not result.is_proof:
        raise _fail(as_json, 2, f"{file} is not a proof document: {'; '.join(result.problems)}")
    if as_json:
        typer.echo(json.dumps(result.to_json(), indent=2, sort_keys=True))
    elif result.ok:
        trust = "keys pinned" if result.pinned else "keys taken from the document (use --registry to pin)"
        typer.echo(f"ok: {result.kind} verifies; {trust}")
    else:
        typer.echo("INVALID: " + "; ".join(result.problems), err=True)
    if not result.ok:
        raise typer.Exit(1)


@app.command("head")
def head_command(
    height: Annotated[int | None, typer.Argument(help="Block height (default: the last block).")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Also write the head to this file.")] = None,
    directory: DirOption = Path("."),
) -> None:
    """Print the certified tree head (keep it: 'prosima verify --since' and 'witness' compare
    against it to detect a rollback or a fork)."""
    from prosima.ledger.log.directory import Ledger

    with _errors(False), Ledger.open(directory) as ledger:
        text = json.dumps(ledger.tree_head(height).to_json(), indent=2, sort_keys=True)
    if out is not None:
        out.write_text(text + "\n")
    typer.echo(text)


@app.command("witness")
def witness_command(
    state: Annotated[
        Path, typer.Option("--state", help="The witness's file of heads seen (made on first use).")
    ],
    directory: DirOption = Path("."),
    registry: TrustedRegistryOption = None,
    as_json: JsonOption = False,
) -> None:
    """Check that the log only grew since this witness last saw it, then record its head; exit 1
    (recording nothing) when it shrank, forked or changed its node keys."""
    from prosima.ledger.log.directory import Ledger
    from prosima.ledger.log.registry import Registry
    from prosima.ledger.log.witness import Witness

    with _errors(as_json):
        witness = Witness.load(state)
        before = witness.last
        trusted = Registry.load(registry) if registry is not None else None
        with Ledger.open(directory, verify="none") as ledger:
            problems = witness.observe(ledger, trusted)
            head = ledger.tree_head()
    old = 0 if before is None else before.tree_size
    data = {"ok": not problems, "problems": problems, "seen": old, "now": head.tree_size}
    if problems:
        if as_json:
            typer.echo(json.dumps(data, indent=2, sort_keys=True))
        else:
            typer.echo("REFUSED: " + "; ".join(problems), err=True)
        raise typer.Exit(1)
    first = " (first sight; registry pinned)" if before is None else ""
    _emit(as_json, data, f"ok: the log grew from {old} to {head.tree_size} entries, consistently{first}")


@app.command("stats")
def stats_command(directory: DirOption = Path("."), as_json: JsonOption = False) -> None:
    """Blocks, transactions, bytes on disk and bytes per transaction."""
    from prosima.ledger.log.directory import Ledger

    with _errors(as_json), Ledger.open(directory) as ledger:
        data = {"ok": True} | ledger.stats()
    _emit(as_json, data, lambda: "\n".join(f"{k}: {v}" for k, v in data.items() if k != "ok"))


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
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Write the report as JSON to this path.")
    ] = None,
) -> None:
    """Run N consensus nodes over a stream of anchoring transactions; report commits, faults, timings
    and storage. Under 'mpirun -n P' the nodes are spread over the P ranks (one each by default)."""
    from prosima.ledger.consensus.erasure import ErasureCode
    from prosima.ledger.consensus.mpi import MpiTransport, launched_by_mpirun
    from prosima.ledger.consensus.voting import RULES
    from prosima.ledger.sim.network import Network, NetworkConfig, format_report
    from prosima.ledger.sim.workload import make_workload, stand_in_shard_ids
    from prosima.optional import MissingExtraError

    if backend not in ("auto", "inproc", "mpi"):
        raise _fail(False, 2, f"--backend must be auto, inproc or mpi, got {backend!r}")
    if voting not in RULES[:2]:
        raise _fail(False, 2, f"--voting must be count or degree-capped, got {voting!r}")
    use_mpi = backend == "mpi" or (backend == "auto" and launched_by_mpirun())
    transport = None
    try:
        if use_mpi:
            transport = MpiTransport(nodes=nodes)
            nodes = transport.size
        code = ErasureCode.parse(erasure) if erasure else None
        config = NetworkConfig(
            nodes=nodes or 20,
            seed=seed,
            system=system,
            batch=batch,
            hubs=hubs,
            replication=replication,
            erasure=(code.k, code.m) if code else None,
            shard_bytes=shard_bytes,
            voting=voting,
            byzantine=byzantine,
        )
        workload = make_workload(images, nodes=config.nodes, seed=seed, shard_ids=stand_in_shard_ids(shards))
        with Network(config, transport) as net:
            report = net.run(workload)
    except MissingExtraError as exc:
        raise _fail(False, 2, str(exc)) from None
    except ValueError as exc:
        raise _fail(False, 2, str(exc)) from None
    if report is None:  # an MPI rank other than 0
        return
    typer.echo(format_report(report))
    if not report["faulty_tolerated"]:
        typer.echo("warning: the faulty nodes exceed what the protocol tolerates; no guarantees", err=True)
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(report, indent=2) + "\n")
    if not report["agreement"] or report["commits"]["stalled"]:
        raise typer.Exit(1)
