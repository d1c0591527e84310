"""`rig provision run|status|export`: the production provisioning station and its records."""

import csv
import getpass
import io
import json
import logging
import os
import socket
import sys
from pathlib import Path

import click
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from rig.cli.console import err, out
from rig.cli.options import board_source, coordinator_option, rack_option, select_option
from rig.cli.results import results_option
from rig.errors import RigError
from rig.provision.setup import DEFAULT_WORKDIR, default_db

DEFAULT_DB = default_db(DEFAULT_WORKDIR)

HELP = """Provision boards: a unique identity, the factory firmware, the lock, and a record of each unit.

\b
Every unit runs its variant's recipe, step by step: identify (MAC or unique id), check (a unit
the records know is refused unless --force), flash with read-back, identity (a P-256 key pair,
a certificate from the station's CA), write the identity into the device, lock (ESP32 eFuses,
STM32 readout protection) and prove the lock. Each unit's outcome is saved in one transaction:
a station killed mid-unit leaves no half record, and the next run does the unit again.

\b
  rig provision run --rack targets/virtual-rack.yaml
  rig provision run --fixtures 1 --board stm32h7-1 --option stm32h7.rdp=0
  rig provision run --force --operator alice          # re-provision; the history keeps both
  rig provision status                                # units and their last attempt
  rig provision export --format csv -o units.csv      # every attempt; --audit for who did what
"""

RUN_HELP = """Provision every board of the rack (or those chosen), up to --fixtures at once.

\b
The station's keys live in --workdir (made on first use, with a note): the provisioning CA's key
and certificate, and the firmware-signing key the devices' bootloaders trust. Keep them. A key on
an HSM is named by its pkcs11: URI; with the CA key on a token, device keys are made on it too.
Device private keys go to the device only: never to a file, the log or the database.

\b
Firmware: on the virtual rack, rig's factory release 1.0.0 signed with the firmware key and a
bootloader that trusts it. Real boards need --bootloader VARIANT=FILE (MCUboot, or the ESP32
second-stage bootloader, built to trust the firmware key) and --image VARIANT=FILE (STM32: an
MCUboot image signed with the firmware key; ESP32: the app, signed here with Secure Boot V2).

\b
Recipe options, --option VARIANT.NAME=VALUE (docs/provisioning.md lists them):
  stm32h7.rdp=0                  leave the STM32H7 open (default 1: readout protection level 1)
  esp32.disable_download=true    burn UART_DOWNLOAD_DIS: the ROM loader stops answering for good
  esp32.disable_jtag=false       keep JTAG (default true: JTAG_DISABLE burnt)

\b
  rig provision run --rack targets/virtual-rack.yaml
  rig provision run --fixtures 3 --tag mcuboot --db postgresql+psycopg://station@db/records
  rig provision run --ca-key \\
      "pkcs11:token=station;object=ca?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=env:PIN"

Exit status: 0 when every unit was provisioned, 1 when one was refused or failed, 2 on bad input.
"""


@click.group(help=HELP)
def provision():
    pass


def _db_option(func):
    return click.option("--db", "db_url", metavar="URL", default=None,
                        help=f"Records database, a SQLAlchemy URL: sqlite:///FILE or "
                             f"postgresql+psycopg://USER@HOST/DB.  [default: {DEFAULT_DB}]")(func)


@provision.command(help=RUN_HELP)
@rack_option
@coordinator_option
@select_option
@_db_option
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_WORKDIR,
              show_default=True, help="The station's folder: keys, CA certificate, log, default database.")
@click.option("--board", "board_ids", multiple=True, metavar="ID", help="Provision this board (repeatable).")
@click.option("--tag", "tags", multiple=True, metavar="TAG",
              help="Only boards with this tag (repeatable: boards with all of them).")
@click.option("--fixtures", type=click.IntRange(min=1), default=None, metavar="N",
              help="Units provisioned at once.  [default: every chosen board]")
@click.option("--force", is_flag=True, help="Re-provision units the records know (a new identity; history kept).")
@click.option("--operator", default=getpass.getuser, show_default="your login name", help="Who runs the station.")
@click.option("--station", "station_name", default=socket.gethostname, show_default="the host name",
              help="The station's name in the records.")
@click.option("--ca-key", metavar="SPEC",
              help="Provisioning CA key: PEM file or pkcs11: URI.  [default: WORKDIR/ca-key.pem]")
@click.option("--ca-cert", metavar="FILE",
              help="Its certificate.  [default: WORKDIR/ca/KEYHASH.pem, made from the key]")
@click.option("--firmware-key", "firmware_keys", multiple=True, metavar="SPEC",
              help="Firmware-signing key: PEM file or pkcs11: URI. Each variant signs with the first one of a "
                   "kind its boot chain verifies (STM32 MCUboot: EC P-256 or RSA-2048; ESP32 Secure Boot V2: "
                   "RSA-3072); repeat for both.  [default: WORKDIR/firmware-key.pem (EC P-256), "
                   "WORKDIR/firmware-key-rsa-3072.pem]")
@click.option("--bootloader", "bootloader_specs", multiple=True, metavar="VARIANT=FILE",
              help="Bootloader for a variant's units (required for real boards).")
@click.option("--image", "image_specs", multiple=True, metavar="VARIANT=FILE",
              help="Factory image for a variant's units (required for real boards).")
@click.option("--option", "option_specs", multiple=True, metavar="VARIANT.NAME=VALUE", help="Recipe option.")
@results_option
def run(rack, coordinator, select, db_url, workdir, board_ids, tags, fixtures, force, operator, station_name, ca_key,
        ca_cert, firmware_keys, bootloader_specs, image_specs, option_specs, results_url):
    from rig.cli.ota import ensure_lab
    from rig.lab import load_rack
    from rig.provision import setup, variants
    from rig.provision.fixture import COORDINATOR_ENV
    from rig.provision.station import run_units, warm_up
    from rig.results.record import Recorder

    # Everything the user typed is checked before the station writes anything.
    options = setup.parse_options(option_specs)
    bootloaders = setup.variant_files("--bootloader", bootloader_specs)
    images = setup.variant_files("--image", image_specs)
    if coordinator:
        # Each fixture process reserves its own place (rig.provision.fixture); the station only lists them.
        with board_source(rack, coordinator, select, holder="rig-provision") as (inventory, _, where):
            boards = _boards(inventory, board_ids, tags, where)
        os.environ[COORDINATOR_ENV] = coordinator
    else:
        boards = _boards(load_rack(rack), board_ids, tags, rack)
    setup.check_real_boards(boards, bootloaders, images)
    recipes = {v: variants.recipe(v) for v in {b.variant for b in boards}}
    warm_up()  # the fixtures' fork server imports esptool, pyocd and the recipes while the station sets up
    spec, records = setup.prepare(workdir, db_url, boards, name=station_name, operator=operator, ca_key=ca_key,
                                  ca_cert=ca_cert, firmware_keys=firmware_keys, bootloaders=bootloaders,
                                  images=images, options=options, force=force, note=_note)
    _log_to(spec.log)
    logging.getLogger("rig.provision.station").info(
        "station %s, operator %s: %d boards, %s fixtures, records in %s", spec.name, spec.operator, len(boards),
        fixtures or len(boards), _safe(spec.db_url))
    if not coordinator:
        ensure_lab(rack)  # remote boards are served on their exporters' hosts
    display = _Display({b.id: len(recipes[b.variant].steps) for b in boards})
    batch = Recorder("provision", results_url, rack=rack, command=" ".join(["rig", *sys.argv[1:]]))
    variant_of = {b.id: b.variant for b in boards}

    def event(board_id, kind, *args):
        display.event(board_id, kind, *args)
        if kind == "done":
            _record_unit(batch, args[0], variant_of[board_id])

    try:
        with display:
            results = run_units(spec, records, boards, fixtures or len(boards), event, recipes)
    except KeyboardInterrupt:  # the fixtures are stopped by now; what they did not finish has no record
        batch.finish("interrupted", note="interrupted from the keyboard; units not finished have no result")
        err("interrupted: units not finished have no record and are done again by the next run")
        raise SystemExit(130) from None
    except BaseException:
        batch.finish("failed", note="the station stopped before the batch was done")
        raise
    order = {b.id: i for i, b in enumerate(boards)}
    results.sort(key=lambda r: order[r.board])
    out.print(_summary(results))
    counts = {o: sum(r.outcome == o for r in results) for o in ("provisioned", "refused", "failed")}
    batch.finish("failed" if counts["refused"] or counts["failed"] else "passed")  # as the exit status says
    out.print(", ".join(f"{n} {o}" for o, n in counts.items()) + f"; records in {_safe(spec.db_url)}", markup=False)
    if counts["refused"] or counts["failed"]:
        raise SystemExit(1)


def _record_unit(batch, result, variant: str) -> None:
    """One unit as a result of the batch's run in the results store (the records database keeps
    the unit's identity; this keeps what the dashboard counts)."""
    rec = result.record
    unit = result.serial or (rec.chip_id if rec else None) or "unidentified unit"
    batch.add(test_id=f"{result.board}: {unit}", test_key=f"provision {variant}", board=result.board, variant=variant,
              outcome={"provisioned": "passed", "refused": "skipped"}.get(result.outcome, "failed"),
              observed=result.outcome, duration=round(result.seconds, 3), message=result.reason,
              output="\n".join(f"{s['name']}: {'ok' if s['ok'] else 'FAILED'} {s['seconds']:.2f} s"
                               for s in (rec.steps if rec else [])) or None,
              facts={"serial": result.serial, "chip_id": rec.chip_id if rec else None})


def _boards(rack, board_ids, tags, rack_path):
    chosen = [rack.board(b) for b in board_ids] if board_ids else list(rack.boards)
    chosen = [b for b in chosen if set(tags) <= set(b.tags)]
    if not chosen:
        raise RigError(f"no board of {rack_path} has the tags {', '.join(tags)}; see `rig boards --rack {rack_path}`")
    return chosen


def _note(line: str) -> None:
    out.print(f"station: {line}", markup=False)


def _log_to(path: str) -> None:
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s station [%(process)d] %(name)s: %(message)s"))
    logger = logging.getLogger("rig.provision")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def _safe(url: str) -> str:
    """The URL without its password, for output and logs."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a URL SQLAlchemy cannot read shows as given; Records said why
        return url


class _Display:
    """One line per fixture: a progress bar on a terminal; plain lines otherwise (CI logs, and tests
    that watch the station): `BOARD: STEP ...` as a step starts, `BOARD: STEP 50% of N bytes` as
    a flash operation passes a quarter, `BOARD: OUTCOME ... (SECONDS s)` at the end."""

    def __init__(self, steps: dict[str, int]):
        self.live = out.is_terminal
        self.steps = steps
        self.progress = Progress(TextColumn("{task.fields[board]:<12}"), BarColumn(bar_width=24),
                                 TextColumn("{task.completed:.0f}/{task.total:.0f}"),
                                 TextColumn("{task.description}"), TimeElapsedColumn(), console=out)
        self.tasks: dict[str, TaskID] = {}
        self.current: dict[str, str] = {}  # board -> its step now
        self.quarter: dict[str, int] = {}  # board -> quarters of its flash operation done (plain lines at 25, 50, 75 %)

    def __enter__(self):
        if self.live:
            self.progress.start()
            self.tasks = {b: self.progress.add_task("waiting", total=n, board=b) for b, n in self.steps.items()}
        return self

    def __exit__(self, *exc):
        if self.live:
            self.progress.stop()

    def event(self, board: str, kind: str, *args) -> None:
        if kind == "step":
            name, state = args
            self.current[board] = name
            if state == "running":
                self._show(board, f"{name} ...", line=f"{board}: {name} ...")
            elif state == "done":
                self._show(board, f"{name} done", advance=1)
        elif kind == "progress":
            done, total = args
            step, quarter = self.current.get(board, ""), done * 4 // max(total, 1)
            if quarter < self.quarter.get(board, 0):  # the step's next flash operation
                self.quarter[board] = 0
            line = f"{board}: {step} {quarter * 25}% of {total} bytes" if 0 < quarter > self.quarter.get(board, 0) \
                and quarter < 4 else None
            self.quarter[board] = quarter
            self._show(board, f"{step} {done * 100 // max(total, 1)}% of {total} bytes", line=line)
        elif kind == "start":
            self._show(board, "starting")
        elif kind == "done":
            r = args[0]
            text = r.outcome + (f" as {r.serial}" if r.serial and r.outcome == "provisioned" else "") + (
                f": {r.reason}" if r.reason else "")
            self._show(board, text, line=f"{board}: {text} ({r.seconds:.1f} s)")
            if self.live:
                self.progress.stop_task(self.tasks[board])

    def _show(self, board: str, text: str, advance: int = 0, line: str | None = None) -> None:
        if self.live:
            self.progress.update(self.tasks[board], description=text, advance=advance)
        elif line:
            print(line, flush=True)


def _summary(results) -> Table:
    table = Table(title="provisioning", title_justify="left")
    for column in ("board", "serial", "outcome", "reason", "seconds"):
        table.add_column(column, overflow="fold")
    colour = {"provisioned": "green", "refused": "yellow", "failed": "red"}
    for r in results:
        table.add_row(r.board, r.serial or "-", f"[{colour[r.outcome]}]{r.outcome}[/]",
                      (r.reason or "-").replace("[", r"\["), f"{r.seconds:.1f}")
    return table


# -- status and export


def _records(db_url: str | None):
    from sqlalchemy.engine import make_url

    from rig.provision.records import Records

    url = db_url or DEFAULT_DB
    try:
        parsed = make_url(url)
    except Exception:  # noqa: BLE001 - Records names the problem in its own words
        return Records(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:") \
            and not Path(parsed.database).is_file():
        raise RigError(f"no records database at {parsed.database}; `rig provision run` makes it, or pass --db URL")
    return Records(url)


@provision.command()
@_db_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts instead of a table.")
def status(db_url, as_json):
    """Every unit the records know, with its last attempt, and the counts.

    \b
    --json prints {"units": [{"chip_id", "serial", "variant", "provisioned", "attempts",
    "last_attempt": {"outcome", "reason", "forced", "operator", "station", "finished_at"}}],
    "counts": {"units", "provisioned", "attempts", "provisioned_attempts", "refused_attempts",
    "failed_attempts"}}.

    \b
      rig provision status
      rig provision status --db postgresql+psycopg://station@db/records --json
    """
    records = _records(db_url)
    history = records.history()
    units: dict[str, list] = {}
    for a in history:
        units.setdefault(a["chip_id"], []).append(a)
    rows = []
    for chip_id, attempts in units.items():
        last, known = attempts[-1], records.provisioned(chip_id)
        rows.append({
            "chip_id": chip_id, "serial": known["serial"] if known else None, "variant": last["variant"],
            "provisioned": bool(known), "attempts": len(attempts),
            "last_attempt": {k: last[k] for k in ("outcome", "reason", "forced", "operator", "station", "finished_at")},
        })
    counts = {"units": len(rows), "provisioned": sum(r["provisioned"] for r in rows), "attempts": len(history)}
    counts |= {f"{o}_attempts": sum(a["outcome"] == o for a in history) for o in ("provisioned", "refused", "failed")}
    if as_json:
        click.echo(json.dumps({"units": rows, "counts": counts}, indent=2))
        return
    table = Table(title=f"{counts['units']} units, {counts['provisioned']} provisioned, {counts['attempts']} attempts",
                  title_justify="left")
    for column in ("chip id", "serial", "variant", "attempts", "last attempt", "by", "at", "reason"):
        table.add_column(column, overflow="fold")
    for r in rows:
        last = r["last_attempt"]
        outcome = ("re-" if last["forced"] and last["outcome"] == "provisioned" else "") + last["outcome"]
        table.add_row(r["chip_id"], r["serial"] or "-", r["variant"], str(r["attempts"]), outcome,
                      f"{last['operator']}@{last['station']}", last["finished_at"],
                      (last["reason"] or "-").replace("[", r"\["))
    out.print(table)


@provision.command()
@_db_option
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="json", show_default=True)
@click.option("--audit", is_flag=True, help="The audit log (who did what, when, where) instead of the attempts.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None, metavar="FILE",
              help="Write to FILE (atomically: the old file or the new, never half).  [default: stdout]")
def export(db_url, fmt, audit, output):
    """Every attempt the records hold - serial, chip id, certificate, hashes, lock state, each step's
    measurements and time, operator, station, outcome - or, with --audit, the audit log.

    \b
      rig provision export --format csv -o attempts.csv
      rig provision export --audit --format json -o audit.json
    """
    from rig.atomic import write_text

    records = _records(db_url)
    text = _audit(records.audit_log(), fmt) if audit else records.export(fmt)
    if output is None:
        click.echo(text, nl=not text.endswith("\n"))
        return
    try:
        write_text(output, text)
    except OSError as exc:
        raise RigError(f"{output}: cannot write ({exc.strerror}); check the folder") from None
    out.print(f"{'audit entries' if audit else 'attempts'} written to {output}", markup=False)


def _audit(rows: list[dict], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(rows, indent=2)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["id", "at", "operator", "station", "action", "chip_id", "detail"])
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()
