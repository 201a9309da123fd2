"""Ledger benchmark: append rate at ``synchronous=FULL``, proof size and verification time
against tree size, store bytes per transaction, and the time to open (verify) a store.

``measure`` times; ``run_ledger_bench`` prints the tables and writes the JSON."""

from __future__ import annotations

import math
import os
import platform
import random
import sqlite3
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prosima.bench.render import Block, Rows, make_console, publish, show
from prosima.ledger.log.directory import Entry, Ledger
from prosima.ledger.log.merkle import MerkleTree, leaf_hash, verify_consistency, verify_inclusion

TREE_SIZES = (1_000, 10_000, 100_000, 1_000_000)
BATCH = 1_000
SAMPLES = 1_000


@dataclass(frozen=True)
class LedgerConfig:
    """What ``bench ledger`` measures."""

    transactions: int = 20_000  # transactions appended in batches (the other phases are derived)


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


def _append_and_open(transactions: int, rng: random.Random) -> dict[str, Any]:
    """Append in three phases to a fresh store, then time opening it (full and from checkpoint)."""
    with tempfile.TemporaryDirectory(prefix="prosima-ledger-bench-") as tmp:
        root = Path(tmp) / "ledger"
        ledger = Ledger.init(root, nodes=4)
        try:
            per_block = max(1, min(BATCH, transactions))
            phases = [_append_phase(ledger, transactions, per_block, False, rng)]
            phases.append(_append_phase(ledger, min(transactions, 5_000), per_block, True, rng))
            phases.append(_append_phase(ledger, max(1, min(transactions // 20, 1_000)), 1, False, rng))
            ledger.store.compact_wal()
            store = ledger.stats()
        finally:
            ledger.close()
        t0 = time.perf_counter()
        Ledger.open(root, verify="full").close()
        full = time.perf_counter() - t0
        t0 = time.perf_counter()
        Ledger.open(root, verify="incremental").close()
        incremental = time.perf_counter() - t0
    n_tx = store["transactions"]
    opened = {
        "full_s": full,
        "full_tx_per_s": n_tx / full,
        "incremental_s": incremental,
        "incremental_tx_per_s": n_tx / incremental,
    }
    return {"append": phases, "store": store, "open": opened}


def measure(config: LedgerConfig) -> dict[str, Any]:
    """Run the benchmark with ``config.transactions`` batched transactions; the JSON document."""
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
    results |= _append_and_open(config.transactions, rng)
    results["proofs"] = _proof_scaling(rng)
    return results


def report(results: dict[str, Any]) -> list[Block]:
    """The append table, the store line and the proof table."""
    append = [
        (
            str(p["tx_per_block"]),
            str(p["blocks"]),
            str(p["transactions"]),
            "yes" if p["verify_signatures"] else "no",
            f"{p['blocks_per_s']:,.0f}",
            f"{p['tx_per_s']:,.0f}",
        )
        for p in results["append"]
    ]
    s, o = results["store"], results["open"]
    store = (
        f"store: {s['blocks']} blocks, {s['transactions']} txs, {s['bytes_on_disk']:,} bytes on disk, "
        f"{s['bytes_per_transaction']:.0f} bytes/tx (200-byte payload, 32-byte key); "
        f"open+verify: full {o['full_s']:.2f} s ({o['full_tx_per_s']:,.0f} tx/s), "
        f"from checkpoint {o['incremental_s']:.2f} s"
    )
    proofs = [
        (
            f"{r['tree_size']:,}",
            f"{r['build_s']:.2f}",
            str(r["inclusion_bytes_max"]),
            str(r["bound_bytes"]),
            f"{r['inclusion_verify_us']:.1f}",
            str(r["consistency_bytes_max"]),
            f"{r['consistency_verify_us']:.1f}",
            "yes" if r["all_verified"] else "NO",
        )
        for r in results["proofs"]
    ]
    return [
        Rows(
            "Ledger append (WAL, synchronous=FULL, quorum 3 of 4)",
            ("tx/block", "blocks", "txs", "signatures re-verified", "blocks/s", "tx/s"),
            append,
        ),
        store,
        Rows(
            "RFC 9162 proofs against tree size",
            (
                "leaves",
                "build s",
                "incl. bytes max",
                "32*ceil(log2 n)",
                "incl. verify us",
                "cons. bytes max",
                "cons. verify us",
                "all ok",
            ),
            proofs,
        ),
    ]


def run_ledger_bench(transactions: int, json_path: str | None) -> dict:
    """Run the benchmark with ``transactions`` batched transactions; print the tables, optionally
    write JSON to ``json_path``, and return the results."""
    results = measure(LedgerConfig(transactions))
    console = make_console()
    show(console, report(results))
    publish(console, results, json_path)
    return results
