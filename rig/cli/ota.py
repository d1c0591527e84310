"""`rig ota`: update boards over the air while faults are injected, and report a verdict per board."""

import importlib
import threading
import time
from dataclasses import replace
from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from rig.cli.console import out
from rig.cli.options import board_source, coordinator_option, rack_option, select_option
from rig.cli.results import results_option
from rig.drivers import preflight
from rig.drivers.pool import BoardPool
from rig.errors import RigError
from rig.lab import load_rack
from rig.ota import faults, scenarios, triggers
from rig.ota import kit as kit_mod
from rig.ota.campaign import FIRMWARE_FAULTS, OUTCOMES, Scenario, Verdict
from rig.ota.kit import CampaignKit

DEFAULT_WORK = Path(".rig/ota")
BOARD_KINDS = {"all": "every board", "mcuboot": "STM32 (MCUboot)", "http": "ESP32 (HTTP)",
               "big-sectors": "MCUboot boards with 128 KiB sectors"}

HELP = """Update boards over the air while things go wrong, and judge each board from read-back.

\b
Per board and scenario: a known release is installed through the board's flasher (pyocd or
esptool), the update is handed over (MCUmgr SMP on the STM32 boards, HTTPS from rig's OTA server
on the ESP32) with the scenario's faults, and the board is read back: which image the boot slot
holds, the MCUboot trailer or the ESP-IDF otadata, and the console's boot lines. The verdict is
`updated`, `kept` (the update was refused, the running image runs on) or `rolled back`. The
boards run at once, each its scenarios in turn; a locked board (readout protection, Secure Boot)
stops the run before it starts, with one line per board.

\b
  rig ota --list                                      named scenarios and the boards they fit
  rig ota --board stm32h7-1 --scenario "crash on boot"
  rig ota --scenario "full image" --fault drop@40%#1 --cut cut@bytes:60%
  rig ota --sweep                                     every scenario on every board (long)

Exit status: 0 when every verdict is as expected, 1 when one is not, 2 on bad input.
"""


@click.command(help=HELP)
@rack_option
@coordinator_option
@select_option
@click.option("--board", "board_ids", multiple=True, metavar="ID",
              help="Board to update (repeatable).  [default: every board of the rack]")
@click.option("--scenario", "names", multiple=True, metavar="NAME",
              help="Named scenario (repeatable; see --list).  [default: full image]")
@click.option("--sweep", is_flag=True, help="Every scenario that fits each board, sweeps included.")
@click.option("--fault", "fault_specs", multiple=True, metavar="SPEC",
              help="Link fault added to each scenario: drop@40%, stall@50%:3, corrupt@1000:16, truncate@90%, "
                   "wrong-file=NAME; '#N' limits it to transfer attempt N.")
@click.option("--cut", "cut_spec", metavar="SPEC",
              help="Power cut added to each scenario: cut@bytes:40% (share of the artefact delivered), "
                   "cut@line:REGEX (console line), cut@delay:SECONDS.")
@click.option("--firmware-fault", type=click.Choice(FIRMWARE_FAULTS), default=None,
              help="Build the new firmware with this fault mode (then the expected outcome is `rolled back`).")
@click.option("--expect", type=click.Choice(OUTCOMES), default=None,
              help="Expected outcome when faults are added.  [default: from the scenario]")
@click.option("--mcuboot", "mcuboot", multiple=True, metavar="VARIANT=FILE",
              help="MCUboot binary built with the campaign key, for a variant of real boards (repeatable).")
@click.option("--work", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_WORK, show_default=True,
              help="Folder for keys and artefacts (kept: boards' bootloaders trust the key in it).")
@click.option("--firmware-key", metavar="KEY", default=None,
              help="Sign ESP32 releases with this Secure Boot V2 key (RSA-3072 PEM file or pkcs11: URI): the "
                   "key a provisioned board's station signed with. Default, when a board has Secure Boot "
                   "on: the station's own .rig/provision/firmware-key-rsa-3072.pem.")
@click.option("--burn-otp", is_flag=True,
              help="Allow scenarios that raise a board's anti-rollback floor for good (downgrade tests burn "
                   "the ESP32 eFuse and MCUboot's NV counter; older releases never boot there again).")
@click.option("--list", "list_only", is_flag=True, help="List the named scenarios and exit.")
@results_option
def ota(rack, coordinator, select, board_ids, names, sweep, fault_specs, cut_spec, firmware_fault, expect, mcuboot,
        work, firmware_key, burn_otp, list_only, results_url):
    if list_only:
        _list()
        return
    link_faults = tuple(faults.parse(spec) for spec in fault_specs)
    cut = triggers.parse(cut_spec) if cut_spec else None
    with board_source(rack, coordinator, select, holder="rig-ota") as (inventory, client, where):
        verdicts = _ota(inventory, client, where, board_ids, names, sweep, link_faults, cut, firmware_fault, expect,
                        mcuboot, work, burn_otp, results_url, firmware_key)
    out.print(summary_table(verdicts))
    if not all(v.ok for v in verdicts):
        raise SystemExit(1)


def _ota(inventory, client, where, board_ids, names, sweep, link_faults, cut, firmware_fault, expect, mcuboot, work,
         burn_otp, results_url, firmware_key=None) -> list[Verdict]:
    boards = [inventory.board(b) for b in board_ids] if board_ids else list(inventory.boards)
    plan = []
    for board in boards:
        chosen = scenarios.scenarios(board.variant, sweep=True) if sweep else [
            scenarios.by_name(n) for n in (names or ("full image",))]
        for s in chosen:
            if not scenarios.fits(s.name, board.variant):
                raise RigError(f"scenario {s.name!r} does not fit {board.id} ({board.variant}); see `rig ota --list`")
            if s.burns_otp and not burn_otp:
                if sweep:
                    continue  # a sweep leaves the one-way scenarios out unless asked
                raise RigError(f"scenario {s.name!r} raises the boards' anti-rollback floor for good; "
                               "add --burn-otp on boards set aside for it")
            if s.cut_at_op is not None and board.host is not None:
                if sweep:
                    continue  # the cut at a flash operation is the lab's relay, on the lab's own host
                raise RigError(f"scenario {s.name!r} cuts power at a flash operation through the virtual lab's "
                               f"relay, which only {board.host}'s own host reaches; run it there")
            plan.append((board, _customise(s, link_faults, cut, firmware_fault, expect)))
    return run_plan(where, plan, work, _mcuboot_files(mcuboot), allow_otp_burn=burn_otp, results=results_url,
                    coordinator=client, firmware_key=firmware_key)


def _customise(s: Scenario, link_faults, cut, firmware_fault, expect) -> Scenario:
    if not (link_faults or cut or firmware_fault or expect):
        return s
    outcome = expect or ("rolled back" if firmware_fault not in (None, "none") else s.expected)
    name = s.name + "".join(f" +{f.kind}" for f in link_faults) + (f" +{cut.describe()}" if cut else "") + (
        f" +{firmware_fault}" if firmware_fault else "")
    return replace(s, name=name, expected=outcome, link_faults=s.link_faults + link_faults, cut=cut or s.cut,
                   fault=firmware_fault or s.fault, link=scenarios.CUT_LINK if cut else s.link)


def _mcuboot_files(specs) -> dict[str, Path]:
    files = {}
    for spec in specs:
        variant, sep, path = spec.partition("=")
        if not sep or not Path(path).is_file():
            raise RigError(f"--mcuboot {spec!r}: expected VARIANT=FILE of an existing MCUboot binary")
        files[variant] = Path(path)
    return files


def _list() -> None:
    table = Table(title="OTA scenarios", title_justify="left")
    for column in ("scenario", "expected", "boards", "default sample"):
        table.add_column(column)
    sample = {n for names in scenarios.grouped(sweep=False).values() for n in names}
    for group in (scenarios.grouped(sweep=False), scenarios.grouped(sweep=True)):
        for kind, n in ((kind, n) for kind, names in group.items() for n in names):
            table.add_row(n, scenarios.by_name(n).expected, BOARD_KINDS[kind], "yes" if n in sample else "")
    out.print(table)


def ensure_lab(rack: str) -> None:
    """Start the virtual lab of `rack` if its boards are virtual and it is not running."""
    from rig.cli.lab import up
    from rig.sim import registry

    if any(b.virtual for b in load_rack(rack).boards) and registry.read(registry.lab_name(rack)) is None:
        click.get_current_context().invoke(up, rack=rack)


def run_plan(rack: str, plan: list, work: Path, mcuboot: dict[str, Path] | None = None,
             allow_otp_burn: bool = False, results: str | None = None, kind: str = "ota",
             coordinator=None, firmware_key: str | None = None) -> list[Verdict]:
    """Run (board, scenario) pairs - the boards at once, each board's scenarios one after the
    other - with a progress bar per board; the campaign is a run of the results store (`results`
    URL, default store), each verdict a result. With a coordinator client (rig.lab.coordinator)
    the boards are its places, all reserved for the run. `firmware_key`: rig.ota.kit.firmware_key."""
    import sys

    from rig.results.record import Recorder

    recorder = Recorder(kind, results, rack=rack, command=" ".join(["rig", *sys.argv[1:]]))
    try:
        verdicts = _run_plan(rack, plan, work, mcuboot, allow_otp_burn, recorder, kind, coordinator,
                             firmware_key)
    except KeyboardInterrupt:
        recorder.finish("interrupted", note="interrupted from the keyboard; verdicts not reached have no result")
        raise
    except BaseException as exc:
        why = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
        recorder.finish("failed", note=f"the campaign stopped: {why}")
        raise
    recorder.finish()
    out.print(f"recorded as {recorder.describe()}", markup=False)
    return verdicts


def record_verdict(recorder, board, verdict: Verdict, seconds: float) -> None:
    """One verdict as a result of the campaign's run."""
    recorder.add(
        test_id=f"{board.id}: {verdict.scenario}", test_key=verdict.scenario, board=board.id, variant=board.variant,
        scenario=verdict.scenario, outcome="passed" if verdict.ok else "failed", duration=round(seconds, 3),
        expected=verdict.expected, observed=verdict.observed, wire_bytes=verdict.wire_bytes,
        rollbacks="; ".join(verdict.rollbacks) or None, read_back=verdict.read_back,
        message=None if verdict.ok else verdict.summary(), console="\n".join(verdict.console) or None,
        output="\n".join([f"{s.name}: {s.seconds:.2f} s {s.detail}" for s in verdict.steps]
                         + [f"fault: {f}" for f in verdict.faults_fired]) or None,
        facts={"artefact_bytes": verdict.artefact_size, "reasons": verdict.reasons})


def _run_plan(rack, plan, work, mcuboot, allow_otp_burn, recorder, kind, coordinator=None,
              firmware_key=None) -> list[Verdict]:
    """The boards at once, a thread each, each running its own scenarios in order; the verdicts
    in plan order. Each board's progress bar and verdict lines carry its id."""
    if coordinator is None:
        ensure_lab(rack)  # remote boards are served on their exporters' hosts
    jobs: dict[str, list[tuple[int, Scenario]]] = {}
    boards = []
    for i, (board, s) in enumerate(plan):
        if board.id not in jobs:
            jobs[board.id] = []
            boards.append(board)
        jobs[board.id].append((i, s))
    _import_tools()
    # a pool holds one board
    pools = {b.id: BoardPool(holder=f"rig {kind}", lease_timeout=0.0, coordinator=coordinator) for b in boards}
    verdicts: dict[int, Verdict] = {}
    shared = threading.Lock()  # the recorder's store and the verdict lines
    columns = (TextColumn("{task.fields[board]:<10}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.description}"), TimeElapsedColumn())
    try:
        # opened one after the other: the boards' labgrid targets come from one shared environment
        drivers = {b.id: pools[b.id].take(b) for b in boards}
        lines = in_parallel(boards, lambda b: preflight.check(drivers[b.id], rack))
        # A board locked with Secure Boot V2 boots what its station's key signs: with that key
        # (given, or the station's own by default) it is no obstacle; open boards need no key.
        secure = {b.id for b, line in zip(boards, lines, strict=True)
                  if line and b.variant in kit_mod.SBV2_VARIANTS and "Secure Boot V2" in line}
        signer = kit_mod.firmware_key(firmware_key) if firmware_key or secure else None
        preflight.refuse([kit_mod.lock_refusal(drivers[b.id], signer, line) if b.id in secure else line
                          for b, line in zip(boards, lines, strict=True)], f"rig {kind}")
        with CampaignKit(rack, work, mcuboot, firmware_signer=signer) as kit, Progress(*columns, console=out) as bar:
            tasks = {b.id: bar.add_task("waiting", total=len(jobs[b.id]), board=b.id) for b in boards}

            def on_step(board_id, step):
                bar.update(tasks[board_id], description=f"{step.name} done ({step.seconds:.1f} s)")

            def run_board(board) -> None:
                for i, s in jobs[board.id]:
                    bar.update(tasks[board.id], description=f"{s.name}: baseline")
                    started = time.monotonic()
                    verdict = kit.campaign(drivers[board.id], on_step, allow_otp_burn).run(s)
                    mark = "[green]ok[/green]" if verdict.ok else "[red]FAILED[/red]"
                    with shared:
                        verdicts[i] = verdict
                        record_verdict(recorder, board, verdict, time.monotonic() - started)
                        bar.console.print(f"{mark} {board.id}: {s.name} -> {verdict.observed} "
                                          f"({time.monotonic() - started:.1f} s)", markup=True)
                        for line in verdict.rollbacks:
                            bar.console.print(f"   rollback seen: {line}", markup=False)
                    bar.advance(tasks[board.id])

            in_parallel(boards, run_board)
    finally:
        for pool in pools.values():
            pool.release()
    return [verdicts[i] for i in sorted(verdicts)]


# What the drivers and targets import on first use, imported before the board threads start: two
# threads importing a package with circular imports (pyocd) at once can each find it half
# initialised (ImportError: partially initialized module).
_FIRST_USE = ("pyocd.core.helpers", "esptool.cmds", "espefuse", "smpclient", "smpclient.transport.serial",
              "smpclient.generics", "smpclient.exceptions", "smpclient.requests.image_management",
              "smpclient.requests.os_management")


def _import_tools() -> None:
    for name in _FIRST_USE:
        importlib.import_module(name)


def in_parallel(boards, work) -> list:
    """work(board) for every board at once, a thread each; the results in board order. The first
    board's error (in board order) is raised once every board is done."""
    results: dict[str, object] = {}
    errors: dict[str, BaseException] = {}

    def run(board) -> None:
        try:
            results[board.id] = work(board)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread, raised there
            errors[board.id] = exc

    threads = [threading.Thread(target=run, args=(b,), name=f"rig-{b.id}", daemon=True) for b in boards]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for board in boards:
        if board.id in errors:
            raise errors[board.id]
    return [results[b.id] for b in boards]


def summary_table(verdicts: list[Verdict]) -> Table:
    table = Table(title="OTA campaign", title_justify="left")
    for column in ("board", "scenario", "expected", "observed", "verdict", "on the wire", "faults", "rollback"):
        table.add_column(column)
    for v in verdicts:
        table.add_row(v.board, v.scenario, v.expected, v.observed + (f" ({'; '.join(v.reasons)})" if v.reasons else ""),
                      "[green]ok[/green]" if v.ok else "[red]FAILED[/red]",
                      f"{v.wire_bytes} B of {v.artefact_size} B", "; ".join(v.faults_fired) or "-",
                      "; ".join(r.split(": ", 1)[1] for r in v.rollbacks) or "-")
    return table
