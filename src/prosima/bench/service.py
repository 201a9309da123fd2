"""Service latency benchmark: ``prosima serve`` as a subprocess on a fresh ledger of ``nodes``
nodes holding the demo's slices (8 embedded brain sections, anchored through the service), measured
over HTTP from this process:

- verify of an anchored 256x256 slice (``POST /v1/verify``), ``repeats`` times;
- anchor of one new slice per request (``POST /v1/anchor``, one consensus round each), a batch
  of new slices in one request (per slice: the request's time over its slices), and one-slice
  requests from ``clients`` clients at once, which the service commits in shared rounds (group
  commit; per slice: the time from the first request to the last answer over the slices);
- restore + record of a noisy copy of an anchored slice (``POST /v1/restore``: match, restore,
  commit the restoration through the nodes' consensus), ``repeats`` times.

Times are wall-clock per request as the client sees it (upload, work, answer). For the commits the
service also reports its consensus rounds' wall time and critical path (the slowest node of each
phase, as ``bench consensus`` reports it: what a committee with a core per node would take). The
first request of each kind is a warm-up and is not counted. ``measure`` runs;
``run_service_bench`` prints the table against the aims and writes the JSON.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from prosima.bench.progress import SILENT, Progress
from prosima.bench.render import Block, Rows, console_progress, make_console, publish, show
from prosima.bench.report import environment
from prosima.pipelines.latency import latency_stats

AIMS_MS = {"verify": 30.0, "anchor": 60.0, "restore": 150.0}
LABELS = {
    "verify": "verify an anchored 256x256 slice",
    "anchor": "anchor one slice (one round per request)",
    "anchor_batched": "anchor, per slice of a batched request",
    "anchor_concurrent": "anchor, per slice, one-slice requests at once",
    "restore": "restore + record",
}
GENERATOR = "pretrained:prosima-full"


@dataclass(frozen=True)
class ServiceBenchConfig:
    """What ``bench service`` measures."""

    nodes: int = 20  # ledger nodes running consensus in the service
    slices: int = 8  # demo slices anchored before measuring
    repeats: int = 20  # requests measured per operation (after one warm-up)
    batch: int = 16  # new slices in the batched anchor request
    concurrent: int = 32  # one-slice anchor requests sent at once ...
    clients: int = 8  # ... by this many clients
    sigma: float = 0.05  # Gaussian noise of the copies restored
    threads: int = 2  # torch threads of the service process
    seed: int = 0  # seed of the noise
    ready_timeout: float = 600.0  # seconds the service may take to open the ledger

    def __post_init__(self) -> None:
        if min(self.repeats, self.slices, self.batch, self.nodes, self.concurrent, self.clients) < 1:
            raise ValueError(
                "--repeats, --slices, --batch, --nodes, --concurrent and --clients must be at least 1"
            )


def _write(folder: Path, name: str, image: np.ndarray) -> Path:
    from prosima.imaging.io import write_png

    path = folder / f"{name}.png"
    write_png(path, np.clip(image, 0.0, 1.0), data_range=(0.0, 1.0))
    return path


def _images(config: ServiceBenchConfig, folder: Path) -> tuple[list[Path], list[Path], list[Path]]:
    """The demo slices (anchored first), new slices to anchor one per request and as a batch, and
    noisy copies of the demo slices to restore."""
    from prosima.imaging.corruption import gaussian_noise
    from prosima.imaging.datasets import embedded_default_slices
    from prosima.pipelines.demo import demo_slices

    shown = list(demo_slices(None, config.slices))
    demo = [_write(folder, name, image) for name, image in shown]
    source = embedded_default_slices()
    taken = {name for name, _ in shown}
    wanted = config.repeats + 1 + config.batch + config.concurrent
    spare = [
        item.image
        for item in (source[i] for i in range(round(0.1 * len(source)), round(0.9 * len(source))))
        if f"{item.subject}-{item.contrast}-z{item.z:03d}" not in taken
    ]
    if len(spare) < wanted:
        raise ValueError(f"the embedded brain has {len(spare)} spare slices; lower --repeats or --batch")
    picks = np.linspace(0, len(spare) - 1, wanted).round().astype(int)
    fresh = [_write(folder, f"new-{k:03d}", np.asarray(spare[i])) for k, i in enumerate(picks)]
    noisy = [
        _write(
            folder,
            f"noisy-{k:03d}",
            gaussian_noise(shown[k % len(shown)][1], config.sigma, seed=config.seed + k).image,
        )
        for k in range(config.repeats + 1)
    ]
    return demo, fresh, noisy


def _post(client: Any, path: str, file: Path, field: str) -> tuple[float, dict[str, Any]]:
    """One request's wall time (s) and its answer; refused unless it succeeds."""
    upload = [(field, (file.name, file.read_bytes(), "image/png"))]
    start = time.perf_counter()
    res = client.post(path, files=upload)
    seconds = time.perf_counter() - start
    body = res.json()
    if res.status_code != 200 or not body.get("ok"):
        raise RuntimeError(f"{path} answered {res.status_code}: {body.get('error') or body}")
    return seconds, body


def _wait(client: Any, answer: Any, poll: float = 0.01) -> dict[str, Any]:
    """Follow a 202 job to its answer (asking every ``poll`` seconds)."""
    if answer.status_code != 202:
        raise RuntimeError(f"{answer.request.url.path} answered {answer.status_code}: {answer.json()}")
    href = answer.json()["href"]
    while True:
        state = client.get(href).json()
        if state["state"] in ("succeeded", "failed"):
            if state["state"] == "failed" or not state["result"].get("ok"):
                raise RuntimeError(f"job {href} failed: {state['result']}")
            return dict(state["result"])
        time.sleep(poll)


def _timed(rows: list[tuple[float, dict[str, Any]]]) -> dict[str, Any]:
    """Latency of the requests after the warm-up, with the consensus times the service reported."""
    measured = rows[1:]
    out: dict[str, Any] = latency_stats([s for s, _ in measured])
    commits = [b["commit"] for _, b in measured if b.get("commit")]
    if commits:
        out["commit_wall"] = latency_stats([c["wall_ms"] / 1e3 for c in commits])
        out["critical_path"] = latency_stats([c["critical_path_ms"] / 1e3 for c in commits])
    return out


def _at_once(base: str, auth: dict[str, str], files: list[Path], clients: int) -> dict[str, Any]:
    """``files`` anchored one per request by ``clients`` clients at once: per slice, the time from
    the first request to the last answer over the slices; each request's own latency; and how many
    slices shared each round."""
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    with httpx.Client(base_url=base, timeout=600, headers=auth) as client:
        begun = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            rows = list(pool.map(lambda path: _post(client, "/v1/anchor", path, "files"), files))
        seconds = time.perf_counter() - begun
    commits = [b["commit"] for _, b in rows if b.get("commit")]
    shared = [c["images"] for c in commits]
    per_request = latency_stats([s for s, _ in rows])
    return {
        "median_ms": 1e3 * seconds / len(files),
        "p95_ms": 1e3 * seconds / len(files),
        "n": len(files),
        "clients": clients,
        "request_median_ms": per_request["median_ms"],
        "request_p95_ms": per_request["p95_ms"],
        "slices_per_round": float(np.mean(shared)) if shared else 1.0,
        **(
            {
                "commit_wall": latency_stats(
                    [b["commit"]["wall_ms"] / 1e3 for _, b in rows if b.get("commit")]
                ),
                "critical_path": latency_stats(
                    [b["commit"]["critical_path_ms"] / 1e3 for _, b in rows if b.get("commit")]
                ),
            }
            if shared
            else {}
        ),
    }


def measure(config: ServiceBenchConfig, progress: Progress = SILENT) -> dict[str, Any]:
    """Start the service on a fresh ledger, anchor the demo slices through it, and time each
    operation ``repeats`` times over HTTP."""
    import httpx

    from prosima.app.ledger_queries import init_ledger
    from prosima.service.child import child_service
    from prosima.service.tokens import TokenStore

    with tempfile.TemporaryDirectory(prefix="prosima-bench-service-") as tmp:
        root = Path(tmp)
        demo, fresh, noisy = _images(config, root)
        ledger = root / "ledger"
        init_ledger(ledger, nodes=config.nodes)
        store, token = TokenStore.open_or_empty(root / "tokens.json").with_new_token("bench")
        store.save()
        auth = {"Authorization": f"Bearer {token}"}
        progress.note(f"starting prosima serve on a {config.nodes}-node ledger")
        start = time.perf_counter()
        with (
            child_service(
                ledger,
                root / "service.log",
                tokens=store.path,
                threads=config.threads,
                timeout=config.ready_timeout,
            ) as child,
            httpx.Client(base_url=child.base, timeout=600, headers=auth) as client,
        ):
            base = child.base
            ready_s = time.perf_counter() - start
            res = client.post("/v1/models/anchor", params={"weights": GENERATOR})
            if res.status_code != 200:
                raise RuntimeError(f"anchoring {GENERATOR} failed: {res.json()}")
            progress.note(f"ready after {ready_s:.1f} s; anchoring {len(demo)} demo slices")
            setup = _wait(
                client, client.post("/v1/anchor", files=[("files", (p.name, p.read_bytes())) for p in demo])
            )
            rows: dict[str, list[tuple[float, dict[str, Any]]]] = {"verify": [], "restore": [], "anchor": []}
            for k in range(config.repeats + 1):
                rows["verify"].append(_post(client, "/v1/verify", demo[k % len(demo)], "file"))
                progress.advance("verify", config.repeats + 1)
            for path in noisy:
                rows["restore"].append(_post(client, "/v1/restore", path, "file"))
                progress.advance("restore + record", len(noisy))
            for path in fresh[: config.repeats + 1]:
                rows["anchor"].append(_post(client, "/v1/anchor", path, "files"))
                progress.advance("anchor one slice", config.repeats + 1)
            batch = fresh[config.repeats + 1 : config.repeats + 1 + config.batch]
            upload = [("files", (p.name, p.read_bytes(), "image/png")) for p in batch]
            begun = time.perf_counter()
            body = _wait(client, client.post("/v1/anchor", files=upload, params={"batch": config.batch}))
            seconds = time.perf_counter() - begun
            progress.note(f"anchoring {config.concurrent} slices from {config.clients} clients at once")
            together = _at_once(base, auth, fresh[config.repeats + 1 + config.batch :], config.clients)
    results = {name: _timed(r) for name, r in rows.items()}
    results["anchor_concurrent"] = together
    results["anchor_batched"] = {
        "median_ms": 1e3 * seconds / len(batch),
        "p95_ms": 1e3 * seconds / len(batch),
        "n": len(batch),
        "request_ms": 1e3 * seconds,
        **(
            {
                "commit_wall_ms": body["commit"]["wall_ms"],
                "critical_path_ms": body["commit"]["critical_path_ms"],
            }
            if body.get("commit")
            else {}
        ),
    }
    return {
        "config": asdict(config),
        "environment": environment(service_threads=config.threads),
        "ready_seconds": ready_s,
        "anchored_demo": setup["committed"],
        "aims_ms": AIMS_MS,
        "results": results,
    }


def _ms(stats: dict[str, Any] | None, key: str = "median_ms") -> str:
    return "-" if not stats else f"{stats[key]:.1f}"


def report(document: dict[str, Any]) -> list[Block]:
    """The latency table against the aims."""
    results = document["results"]
    rows: list[Sequence[str] | None] = []
    for name in ("verify", "anchor", "anchor_batched", "anchor_concurrent", "restore"):
        if name not in results:  # a document from before the row existed
            continue
        r = results[name]
        aim = AIMS_MS.get(name.split("_")[0])
        met = "-" if aim is None else ("yes" if r["median_ms"] <= aim else "no")
        commit = r.get("commit_wall") or (
            {"median_ms": r["commit_wall_ms"]} if "commit_wall_ms" in r else None
        )
        critical = r.get("critical_path") or (
            {"median_ms": r["critical_path_ms"]} if "critical_path_ms" in r else None
        )
        rows.append([LABELS[name], str(r["n"]), _ms(r), _ms(r, "p95_ms"), _ms(commit), _ms(critical),
                     "-" if aim is None else f"<= {aim:.0f}", met])  # fmt: skip
    cfg = document["config"]
    title = (
        f"prosima serve over HTTP: {cfg['nodes']} nodes, {document['environment']['cpus']} CPUs, "
        f"{cfg['threads']} torch threads (ms per request; consensus: the service's own timing)"
    )
    columns = ["operation", "n", "median", "p95", "consensus wall", "critical path", "aim", "met"]
    notes = [f"service ready {document['ready_seconds']:.1f} s after start"]
    together = results.get("anchor_concurrent")
    if together:
        notes.append(
            f"{together['n']} one-slice anchors from {together['clients']} clients at once: "
            f"{together['slices_per_round']:.1f} slices per round on average, each request answered in "
            f"{together['request_median_ms']:.0f} ms median ({together['request_p95_ms']:.0f} ms p95)"
        )
    return [Rows(title, columns, rows), *notes]


def run_service_bench(config: ServiceBenchConfig, json_path: str | Path | None = None) -> dict[str, Any]:
    """Measure, print the table and write the JSON; return the JSON document."""
    console = make_console(off_terminal=140)
    with console_progress(console, bar=True) as watch:
        document = measure(config, watch)
    show(console, report(document))
    publish(console, document, json_path)
    return document
