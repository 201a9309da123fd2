"""``prosima pacs``: the archive connection. ``watch`` anchors every instance stored into an Orthanc
archive; ``verify`` and ``restore`` take an instance by its Orthanc id or SOP Instance UID (a
restoration is stored back as a derived series); ``archive`` runs a private Orthanc for a demo."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from prosima.cli.group import command_group
from prosima.cli.options import ConsensusOption, JsonOption, LedgerOption, QuietOption, TrustedRegistryOption
from prosima.cli.output import Output

if TYPE_CHECKING:
    from prosima.pacs.orthanc_client import OrthancClient
    from prosima.pacs.watcher import WatchEvent, WatchReport

app = command_group("The PACS connection: anchor, verify and restore images held in an Orthanc archive.")


OrthancOption = Annotated[
    str | None,
    typer.Option(
        "--orthanc",
        envvar="PROSIMA_ORTHANC_URL",
        help="The archive's REST URL, e.g. http://127.0.0.1:8042 (default: the credentials file's url).",
    ),
]
UserOption = Annotated[
    str | None, typer.Option("--user", envvar="PROSIMA_ORTHANC_USER", help="The archive's HTTP user.")
]
PasswordOption = Annotated[
    str | None,
    typer.Option(
        "--password",
        envvar="PROSIMA_ORTHANC_PASSWORD",
        help="The archive's HTTP password (better: $PROSIMA_ORTHANC_PASSWORD or --credentials).",
    ),
]
CredentialsOption = Annotated[
    Path | None,
    typer.Option(
        "--credentials",
        help='A private (mode 0600) JSON file {"url", "user", "password"}, as \'prosima pacs archive\' '
        "writes it.",
    ),
]
TimeoutOption = Annotated[
    float, typer.Option("--timeout", min=0.1, help="Seconds to wait for each answer of the archive.")
]
InstanceArgument = Annotated[
    str, typer.Argument(help="The instance: its Orthanc id (xxxxxxxx-xxxxxxxx-...) or its SOP Instance UID.")
]


def archive_client(
    orthanc: str | None, user: str | None, password: str | None, credentials: Path | None, timeout: float
) -> OrthancClient:
    """The archive's client from the options: a URL, and a user and password given as options or
    kept in a credentials file (not both)."""
    from prosima.errors import InputError
    from prosima.pacs.credentials import read_credentials
    from prosima.pacs.orthanc_client import OrthancClient

    archive_id = None
    if credentials is not None:
        if user is not None or password is not None:
            raise InputError("give the archive's login as --user/--password or as --credentials, not both")
        login = read_credentials(credentials)
        if orthanc is None or orthanc == login.url:
            orthanc, archive_id = login.url, login.archive_id
        user, password = login.user, login.password
    if orthanc is None:
        raise InputError("--orthanc URL: which archive? (or a --credentials file that names its url)")
    return OrthancClient(orthanc, user, password, timeout=timeout, archive_id=archive_id)


def _event_line(e: WatchEvent) -> str:
    records = f" (record {', '.join(e.txs)})" if e.txs else ""
    detail = f": {e.detail}" if e.detail else ""
    return f"change {e.seq}: instance {e.instance} {e.outcome}{detail}{records}"


def _summary(report: WatchReport) -> str:
    from prosima.pacs.watcher import ALREADY_ANCHORED, CHANGED, COMMITTED, RESTORATION, SKIPPED

    return (
        f"changes {report.start}..{report.last}: {report.count(COMMITTED)} anchored, "
        f"{report.count(ALREADY_ANCHORED)} already anchored, {report.count(RESTORATION)} recorded "
        f"restorations, {report.count(CHANGED)} changed copies not anchored, {report.count(SKIPPED)} skipped"
    )


@app.command("watch")
def watch_command(
    ledger: LedgerOption,
    orthanc: OrthancOption = None,
    user: UserOption = None,
    password: PasswordOption = None,
    credentials: CredentialsOption = None,
    once: Annotated[
        bool, typer.Option("--once", help="Process what the archive holds now, then exit (else: follow it).")
    ] = False,
    interval: Annotated[
        float, typer.Option("--interval", min=0.1, help="Seconds between polls of the changes feed.")
    ] = 1.0,
    batch: Annotated[int, typer.Option(min=1, help="Images per consensus round.")] = 16,
    consensus: ConsensusOption = "inproc",
    timeout: TimeoutOption = 30.0,
    json_path: JsonOption = None,
    quiet: QuietOption = False,
) -> None:
    """Anchor every instance stored into the archive, following its changes feed.

    The feed's position is kept in the ledger folder (orthanc-watch.json), so a restart neither
    misses an instance nor anchors one twice. Not anchored (and reported): the archive's copies of
    restorations recorded on the ledger, changed copies stored under an anchored SOP Instance UID,
    and instances without a 2-D image. --json (with --once) writes the poll's report."""
    from prosima.app.session import Session
    from prosima.errors import InputError
    from prosima.pacs.watcher import CHANGED, ArchiveWatcher

    if json_path is not None and not once:
        raise InputError("--json writes the report of one poll: use it with --once")
    out = Output(json_path, quiet)
    client = archive_client(orthanc, user, password, credentials, timeout)

    def event(e: WatchEvent) -> None:
        if e.outcome == CHANGED:
            out.warn("warning: " + _event_line(e))
        else:
            out.info(_event_line(e))

    def reported(report: WatchReport) -> None:
        if report.note:
            out.warn(f"note: {report.note}")
        if report.events:
            out.result(_summary(report))

    with Session.open(ledger, consensus) as session:
        watcher = ArchiveWatcher(session, client, batch=batch, on_event=event)
        if once:
            report = watcher.poll()
            if report.note:
                out.warn(f"note: {report.note}")
            out.result(_summary(report))
            out.json(report.to_json())
            return
        out.info(f"following {client.url} into {ledger} (Ctrl-C stops)")
        try:
            watcher.run(
                interval=interval,
                on_report=reported,
                on_error=lambda exc: out.warn(f"warning: {exc}; trying again in {interval:g} s"),
            )
        except KeyboardInterrupt:
            out.info("stopped")


@app.command("verify")
def verify_command(
    instance: InstanceArgument,
    ledger: LedgerOption,
    orthanc: OrthancOption = None,
    user: UserOption = None,
    password: PasswordOption = None,
    credentials: CredentialsOption = None,
    registry: TrustedRegistryOption = None,
    timeout: TimeoutOption = 30.0,
    json_path: JsonOption = None,
) -> None:
    """Is the archive's instance exactly an anchored image or a trusted restoration? Exit 0 if so."""
    from prosima.app.session import Session
    from prosima.app.verify_results import VerifyResult
    from prosima.pacs.instances import verify_instance
    from prosima.provenance.verdict_text import slice_line, verdict_lines

    out = Output(json_path)
    client = archive_client(orthanc, user, password, credentials, timeout)
    with Session.open(ledger, "direct", trusted=registry) as session:
        result = verify_instance(session, client, instance)
    if isinstance(result, VerifyResult):
        for line in verdict_lines(result.verdict):
            out.result(line)
        if result.instance is not None:
            out.result("  " + result.instance.text())  # clear identifiers: this terminal only
    else:
        for z, v in enumerate(result.verdicts):
            out.result(slice_line(z, v))
    out.json(result.to_json())
    if not result.ok:
        raise typer.Exit(1)


@app.command("restore")
def restore_command(
    instance: InstanceArgument,
    ledger: LedgerOption,
    orthanc: OrthancOption = None,
    user: UserOption = None,
    password: PasswordOption = None,
    credentials: CredentialsOption = None,
    record: Annotated[
        str | None,
        typer.Option(
            "--record", help="Record id of the original (default: the nearest anchor, by the rule)."
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            help="Generator: pretrained:NAME or a checkpoint (default prosima-full); must be anchored."
        ),
    ] = None,
    consensus: ConsensusOption = "inproc",
    timeout: TimeoutOption = 30.0,
    json_path: JsonOption = None,
) -> None:
    """Restore the archive's instance and store the restoration back as a derived series.

    The instance is restored against its anchored original, the restoration committed, and the
    output stored into the archive as a new series of the same study whose Source Image Sequence
    names the instance, then read back to check that the archive kept its pixels. Exit 1 (nothing
    committed or stored) when no anchored original passes the matching rule."""
    from prosima.app.session import Session
    from prosima.pacs.instances import restore_instance

    out = Output(json_path)
    client = archive_client(orthanc, user, password, credentials, timeout)
    with Session.open(ledger, consensus) as session:
        done = restore_instance(session, client, instance, model=model, record=record)
    restored = done.result.restored
    m = restored.match
    how = "given record" if m["method"] == "record" else f"nearest, similarity {m['similarity']:.3f}"
    out.result(f"original {m['tx']} ({how})")
    out.result(
        f"restored instance {done.source}: record {restored.tx} height {restored.height}; stored into "
        f"the archive as instance {done.stored.instance_id} (a derived series referencing it)"
    )
    out.json(done.to_json())


@app.command("archive")
def archive_command(
    folder: Annotated[
        Path, typer.Option("--folder", help="Where the archive keeps its configuration, storage and log.")
    ],
    overwrite_instances: Annotated[
        bool,
        typer.Option(
            "--overwrite-instances",
            help="A store of a SOP Instance UID already held replaces it (default: the first is kept).",
        ),
    ] = False,
) -> None:
    """Run a private Orthanc archive on free loopback ports until Ctrl-C.

    Authentication is on (its login is written to FOLDER/orthanc-credentials.json, mode 0600),
    remote access off, and DICOM stores are accepted from the AE title PROSIMA_SCU at 127.0.0.1."""
    import time

    from prosima.pacs.credentials import CREDENTIALS_FILE, write_credentials
    from prosima.pacs.orthanc_server import MODALITY_AET, start_orthanc

    server = start_orthanc(folder, overwrite_instances=overwrite_instances)
    try:
        path = write_credentials(folder / CREDENTIALS_FILE, server.login())
        typer.echo(f"Orthanc {server.url} (REST), DICOM {server.aet}@127.0.0.1:{server.dicom_port}")
        typer.echo(f"login: {path}")
        typer.echo(
            f"store: storescu -aet {MODALITY_AET} -aec {server.aet} 127.0.0.1 {server.dicom_port} FILE.dcm"
        )
        typer.echo(f"watch: prosima pacs watch --ledger LEDGER --credentials {path}")
        while server.process.poll() is None:
            time.sleep(0.5)
        typer.secho(f"error: Orthanc exited ({server.process.returncode}); log: {server.log}", err=True)
        raise typer.Exit(1)
    except KeyboardInterrupt:
        typer.echo("stopping the archive")
    finally:
        server.stop()
