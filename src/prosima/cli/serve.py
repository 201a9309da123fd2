"""``prosima serve``: the long-running service (a JSON API on uvicorn) holding one ledger open, and
``prosima serve token``: the API tokens that authorize its writes."""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path
from typing import Annotated

import typer

from prosima.cli.errors import ReportingGroup
from prosima.cli.group import command_group
from prosima.cli.options import LEDGER_ENV, ConsensusOption, TrustedRegistryOption
from prosima.errors import InputError

app = typer.Typer(
    help="Run the service: one process holding the ledger and the models, answering a JSON API.",
    no_args_is_help=True,
    add_completion=False,
    cls=ReportingGroup,
    invoke_without_command=True,
)
token_app = command_group("The API tokens that authorize the service's writes (anchor, restore).")
app.add_typer(token_app, name="token")

MiB = 1024 * 1024
DEFAULT_WATCH_INTERVAL_S = 1.0

TokensOption = Annotated[
    Path,
    typer.Option("--tokens", help="The tokens file (JSON of SHA-256 hashes, mode 0600)."),
]


def _listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host``:``port`` (0: any free port), refused with a clear message."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        # proto IPPROTO_TCP: asyncio turns Nagle off only on sockets that say they are TCP (else
        # every answer written in two parts waits ~40 ms for the client's delayed ACK)
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        raise InputError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def _watch_interval(given: float | None, archive: object) -> float:
    """The follower's interval: as given, else one second with an archive and none without."""
    if given is not None:
        return given
    return DEFAULT_WATCH_INTERVAL_S if archive else 0.0


@app.callback()
def serve_command(
    ctx: typer.Context,
    ledger: Annotated[
        Path | None,
        typer.Option(
            "--ledger", "-d", envvar=LEDGER_ENV, help="Ledger directory (made by 'prosima ledger init')."
        ),
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on (0: any free port).")] = 8000,
    tokens: Annotated[
        Path | None,
        typer.Option(
            "--tokens", help="Tokens file authorizing writes ('prosima serve token create'); none: no writes."
        ),
    ] = None,
    consensus: ConsensusOption = "inproc",
    registry: TrustedRegistryOption = None,
    max_body_mb: Annotated[
        int, typer.Option("--max-body-mb", min=1, help="Largest request body accepted, in MiB (larger: 413).")
    ] = 512,
    max_files: Annotated[
        int, typer.Option("--max-files", min=1, max=1000, help="Most files one request uploads.")
    ] = 1000,
    c2pa_certs: Annotated[
        Path | None,
        typer.Option("--c2pa-certs", help="Certificates that sign C2PA manifests into restored PNGs."),
    ] = None,
    work_dir: Annotated[
        Path | None,
        typer.Option("--work-dir", help="Folder for uploads and restored files (default: system temp)."),
    ] = None,
    torch_threads: Annotated[
        int | None,
        typer.Option("--torch-threads", min=1, help="Threads torch computes with (default: one per core)."),
    ] = None,
    orthanc: Annotated[
        str | None,
        typer.Option(
            "--orthanc", help="An existing archive's REST URL (default: the credentials file's url)."
        ),
    ] = None,
    credentials: Annotated[
        Path | None,
        typer.Option(
            "--credentials",
            help='The existing archive\'s login: a private (0600) JSON file {"url", "user", "password"}.',
        ),
    ] = None,
    archive: Annotated[
        Path | None,
        typer.Option(
            "--archive",
            help="Run a private Orthanc archive in FOLDER while the service runs (its login is written "
            "to FOLDER/orthanc-credentials.json, mode 0600).",
        ),
    ] = None,
    watch_interval: Annotated[
        float | None,
        typer.Option(
            "--watch-interval",
            min=0.0,
            help="Seconds between polls of the archive's changes feed, anchoring what is stored into "
            "it (default 1; 0: no follower, POST /v1/pacs/watch/poll polls on request).",
        ),
    ] = None,
    log_level: Annotated[
        str, typer.Option(help="uvicorn's log level: critical, error, warning, info, debug.")
    ] = "info",
) -> None:
    """Serve the ledger's JSON API (OpenAPI at /openapi.json; /healthz, /readyz) until stopped."""
    if ctx.invoked_subcommand is not None:
        return
    # before torch loads: idle OpenMP threads sleep instead of spinning, so between requests (and
    # while the event loop reads an upload) they do not take the cores the server needs
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import uvicorn

    from prosima.ledger.log.directory import REGISTRY_FILE
    from prosima.service.app import create_app
    from prosima.service.archive_link import archive_of
    from prosima.service.settings import ServiceSettings

    if ledger is None:
        raise InputError("give the ledger to serve: --ledger DIR (or $PROSIMA_LEDGER_DIR)")
    if not (ledger / REGISTRY_FILE).is_file():
        raise InputError(
            f"{ledger} is not a ledger directory (no {REGISTRY_FILE}); run 'prosima ledger init'"
        )
    settings = ServiceSettings(
        ledger=ledger,
        tokens=tokens,
        consensus=consensus,
        trusted=registry,
        max_body_bytes=max_body_mb * MiB,
        max_files=max_files,
        work_dir=work_dir,
        c2pa_certs=c2pa_certs,
        torch_threads=torch_threads,
        orthanc=orthanc,
        credentials=credentials,
        archive_folder=archive,
        watch_interval=_watch_interval(watch_interval, orthanc or credentials or archive),
    )
    sock = _listen(host, port)  # before a private archive starts: a taken port starts nothing
    bound = sock.getsockname()[1]
    service = create_app(settings)
    link = archive_of(service)
    try:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(name)s: %(message)s")
        typer.echo(
            f"prosima serve: listening on http://{host}:{bound} (ledger {ledger}; writes "
            f"{'need a token from ' + str(tokens) if tokens else 'refused: no --tokens'})"
        )
        if link is not None:
            typer.echo(f"prosima serve: portal http://{host}:{bound}/portal; archive {link.client.url}")
            if link.credentials is not None and link.store_command is not None:
                typer.echo(f"prosima serve: archive login in {link.credentials}; store: {link.store_command}")
        config = uvicorn.Config(
            service, log_level=log_level, access_log=log_level == "debug", timeout_graceful_shutdown=30
        )
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        if link is not None:
            link.close()  # also when the server never ran its shut-down


@token_app.command("create")
def token_create(
    tokens: TokensOption,
    name: Annotated[str, typer.Option("--name", help="What the token is for (shown by 'token list').")] = "",
) -> None:
    """Make a new token and print it, once: only its SHA-256 is kept (the file is made mode 0600)."""
    from prosima.service.tokens import TokenStore

    store, token = TokenStore.open_or_empty(tokens).with_new_token(name)
    store.save()
    entry = store.entries[-1]
    typer.echo(f"token {entry.id} added to {tokens}; it is shown only now, keep it secret:", err=True)
    typer.echo(token)


@token_app.command("list")
def token_list(tokens: TokensOption) -> None:
    """The tokens in the file: id, name and when each was made (never the tokens themselves)."""
    from prosima.service.tokens import TokenStore

    store = TokenStore.load(tokens)
    for entry in store.entries:
        typer.echo(f"{entry.id}  {entry.created}  {entry.name}")
    if not store.entries:
        typer.echo("no tokens", err=True)


@token_app.command("revoke")
def token_revoke(
    tokens: TokensOption,
    token_id: Annotated[str, typer.Argument(help="The id of the token to remove ('token list').")],
) -> None:
    """Remove a token: a running service refuses it from its next request."""
    from prosima.service.tokens import TokenStore

    TokenStore.load(tokens).without(token_id).save()
    typer.echo(f"token {token_id} revoked")
