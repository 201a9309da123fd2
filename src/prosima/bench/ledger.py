"""Ledger benchmark: append rate at ``synchronous=FULL``, proof size and verification time
against tree size, store bytes per transaction, and the time to open (verify) a store."""

from __future__ import annotations

import json
import math
import os
import platform
import random
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

from prosima.ledger.log.directory import Entry, Ledger
from prosima.ledger.log.merkle import MerkleTree, leaf_hash, verify_consistency, verify_inclusion

TREE_SIZES = (1_000, 10_000, 100_000, 1_000_000)
BATCH = 1_000
SAMPLES = 1_000


def _entries(n: int, start: int, rng: random.Random) -> list[Entry]:
    """``n`` payloads of 200 bytes with a 32-byte key (an image fingerprint root, say)."""
    return [
        Entry(
            start.to_bytes(8, "big") + i.to_bytes(8, "big") + rng.randbytes(184),
            "image.anchored",
            rng.randbytes(32),
        )
        for i in range(n)
    ]


def _append_phase(
    ledger: Ledger, txs: int, per_block: int, verify: bool, rng: random.Random
) -> dict[str, Any]:
    blocks = max(1, txs // per_block)
    batches = [_entries(per_block, ledger.store.log.size + b * per_block, rng) for b in range(blocks)]
    t0 = time.perf_counter()
    for batch in batches:
        ledger.append(batch, verify_signatures=verify)
    seconds = time.perf_counter() - t0
    return {
        "tx_per_block": per_block,
        "blocks": blocks,
        "transactions": blocks * per_block,
        "verify_signatures": verify,
        "seconds": seconds,
        "blocks_per_s": blocks / seconds,
        "tx_per_s": blocks * per_block / seconds,
    }


def _proof_scaling(rng: random.Random) -> list[dict[str, Any]]:
    rows = []
    for n in TREE_SIZES:
        t0 = time.perf_counter()
        tree = MerkleTree(leaf_hash(i.to_bytes(8, "big")) for i in range(n))
        build = time.perf_counter() - t0
        root = tree.root()
        indices = [rng.randrange(n) for _ in range(SAMPLES)]
        t0 = time.perf_counter()
        proofs = [tree.inclusion_proof(i) for i in indices]
        make = (time.perf_counter() - t0) / SAMPLES
        leaves = [tree.leaf(i) for i in indices]
        t0 = time.perf_counter()
        ok = all(
            verify_inclusion(lh, i, n, p, root) for lh, i, p in zip(leaves, indices, proofs, strict=True)
        )
        check = (time.perf_counter() - t0) / SAMPLES
        olds = [rng.randrange(1, n) for _ in range(SAMPLES // 10)]
        cproofs = [(m, tree.root(m), tree.consistency_proof(m)) for m in olds]
        t0 = time.perf_counter()
        cok = all(verify_consistency(m, n, r, root, p) for m, r, p in cproofs)
        ccheck = (time.perf_counter() - t0) / len(olds)
        sizes = [32 * len(p) for p in proofs]
        rows.append(
            {
                "tree_size": n,
                "build_s": build,
                "inclusion_bytes_max": max(sizes),
                "inclusion_bytes_mean": sum(sizes) / len(sizes),
                "bound_bytes": 32 * math.ceil(math.log2(n)),
                "inclusion_make_us": make * 1e6,
                "inclusion_verify_us": check * 1e6,
                "consistency_bytes_max": max(32 * len(p) for _, _, p in cproofs),
                "consistency_verify_us": ccheck * 1e6,
                "all_verified": ok and cok,
            }
        )
        del tree, proofs
    return rows


def run_ledger_bench(transactions: int, json_path: str | None) -> dict:
    """Run the benchmark with ``transactions`` batched transactions; print a table, optionally
    write JSON to ``json_path``, and return the results."""
    rng = random.Random(20240601)
    results: dict[str, Any] = {
        "machine": {
            "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version,
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
        "settings": {"journal_mode": "wal", "synchronous": "FULL", "nodes": 4, "quorum": 3},
    }
    with tempfile.TemporaryDirectory(prefix="prosima-ledger-bench-") as tmp:
        root = Path(tmp) / "ledger"
        ledger = Ledger.init(root, nodes=4)
        try:
            per_block = max(1, min(BATCH, transactions))
            phases = [_append_phase(ledger, transactions, per_block, False, rng)]
            phases.append(_append_phase(ledger, min(transactions, 5_000), per_block, True, rng))
            phases.append(_append_phase(ledger, max(1, min(transactions // 20, 1_000)), 1, False, rng))
            ledger.store.compact_wal()
            results["append"] = phases
            results["store"] = ledger.stats()
        finally:
            ledger.close()
        t0 = time.perf_counter()
        Ledger.open(root, verify="full").close()
        full = time.perf_counter() - t0
        t0 = time.perf_counter()
        Ledger.open(root, verify="incremental").close()
        incremental = time.perf_counter() - t0
        n_tx = results["store"]["transactions"]
        results["open"] = {
            "full_s": full,
            "full_tx_per_s": n_tx / full,
            "incremental_s": incremental,
            "incremental_tx_per_s": n_tx / incremental,
        }
    results["proofs"] = _proof_scaling(rng)
    _print(results)
    if json_path:
        Path(json_path).write_text(json.dumps(results, indent=2) + "\n")
    return results


def _print(results: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title="Ledger append (WAL, synchronous=FULL, quorum 3 of 4)")
    for col in ("tx/block", "blocks", "txs", "signatures re-verified", "blocks/s", "tx/s"):
        table.add_column(col, justify="right")
    for p in results["append"]:
        table.add_row(
            str(p["tx_per_block"]),
            str(p["blocks"]),
            str(p["transactions"]),
            "yes" if p["verify_signatures"] else "no",
            f"{p['blocks_per_s']:,.0f}",
            f"{p['tx_per_s']:,.0f}",
        )
    console.print(table)
    s, o = results["store"], results["open"]
    console.print(
        f"store: {s['blocks']} blocks, {s['transactions']} txs, {s['bytes_on_disk']:,} bytes on disk, "
        f"{s['bytes_per_transaction']:.0f} bytes/tx (200-byte payload, 32-byte key); "
        f"open+verify: full {o['full_s']:.2f} s ({o['full_tx_per_s']:,.0f} tx/s), "
        f"from checkpoint {o['incremental_s']:.2f} s"
    )
    table = Table(title="RFC 9162 proofs against tree size")
    for col in (
        "leaves",
        "build s",
        "incl. bytes max",
        "32*ceil(log2 n)",
        "incl. verify us",
        "cons. bytes max",
        "cons. verify us",
        "all ok",
    ):
        table.add_column(col, justify="right")
    for r in results["proofs"]:
        table.add_row(
            f"{r['tree_size']:,}",
            f"{r['build_s']:.2f}",
            str(r["inclusion_bytes_max"]),
            str(r["bound_bytes"]),
            f"{r['inclusion_verify_us']:.1f}",
            str(r["consistency_bytes_max"]),
            f"{r['consistency_verify_us']:.1f}",
            "yes" if r["all_verified"] else "NO",
        )
    console.print(table)
