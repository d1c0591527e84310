"""Board health, as a lab admin checks it, and quarantine.

The health check uses only what a bench sees of a board, in this order:

    power cycle   the outlet off, then on (a board without a power switch cannot be checked)
    banner        a line on the console within BANNER_S of power-on (the ESP32 ROM's reset line,
                  MCUboot's first line); a board whose flash read-back is blank has nothing to print
                  and passes this step on that evidence
    probe / ROM   STM32: the debug probe connects and reads the readout-protection level;
                  ESP32: esptool reaches the ROM loader over the console and names the chip
    flash read    the first 4 KiB of the bootloader's area, through the board's own flasher (not
                  tried when the probe or ROM loader did not answer: it goes the same way)

A board that fails any step is quarantined with the reason (rig.results.store records the check and
the quarantine in one transaction). So is a board that fails QUARANTINE_AFTER different tests in a
row, across runs, while each of those tests passed on another board it ran on (its siblings): that
is the board, not the test. `rig health --release BOARD` returns a board to service; its streak then
starts again from the release.
"""

import time
from dataclasses import dataclass, field

from rig.errors import RigError
from rig.image.layouts import LAYOUTS
from rig.variants import Flasher

BANNER_S = 5.0
FLASH_READ = 4096  # bytes from the start of the layout's first partition: the bootloader's
QUARANTINE_AFTER = 3


@dataclass
class Health:
    board: str
    variant: str
    ok: bool = True
    steps: list[dict] = field(default_factory=list)  # [{"name", "ok", "seconds", "detail"}]
    console: str = ""

    @property
    def reason(self) -> str | None:
        failed = [f"{s['name']}: {s['detail']}" for s in self.steps if not s["ok"]]
        return "; ".join(failed) or None

    def line(self) -> str:
        took = sum(s["seconds"] for s in self.steps)
        verdict = "ok" if self.ok else f"FAILED - {self.reason}"
        return f"{self.board}: {verdict} ({took:.1f} s)"


def check(drivers) -> Health:
    """Run the health check on one board (rig.drivers.BoardDrivers, lease held by the caller)."""
    board = drivers.board
    health = Health(board.id, board.variant)

    def step(name: str, fn):
        start = time.monotonic()
        try:
            detail, ok = fn(), True
        except (RigError, OSError, TimeoutError) as exc:
            detail, ok = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__, False
        health.steps.append({"name": name, "ok": ok, "seconds": round(time.monotonic() - start, 2),
                             "detail": detail})
        health.ok = health.ok and ok
        return ok

    console = drivers.console
    drivers.target.activate(console)
    mark = console.mark()
    if drivers.power is None:
        step("power cycle", _no_switch)
    else:
        step("power cycle", lambda: _power_cycle(drivers))
    drivers.forget_state()
    banner = _wait_banner(console, mark)
    if board.facts.flasher is Flasher.ROM_LOADER:
        reached = step("ROM loader", lambda: _rom_loader(drivers))
        channel = "the ROM loader"
    else:
        reached = step("probe", lambda: _probe(drivers))
        channel = "the probe"
    flash: dict[str, bool] = {}
    if reached:
        step("flash read", lambda: _flash_read(drivers, flash))
    else:  # the read goes through the same channel: a second attempt would only wait out its timeouts again
        health.steps.append({"name": "flash read", "ok": False, "seconds": 0.0,
                             "detail": f"not tried: {channel} did not answer"})
    health.steps.insert(1, _banner_step(banner, flash.get("blank")))
    health.ok = all(s["ok"] for s in health.steps)
    console.drain()
    health.console = console.text_since(mark)
    drivers.forget_state()
    return health


def _no_switch():
    raise RigError("the board has no power switch in the rack file; it cannot be power-cycled")


def _power_cycle(drivers) -> str:
    drivers.power_cycle()
    return "outlet off and on"


def _wait_banner(console, mark) -> dict:
    start = time.monotonic()
    try:
        line = console.expect_line(r".*\S.*", timeout=BANNER_S).group(0).strip()
        return {"line": line, "seconds": round(time.monotonic() - start, 2)}
    except (RigError, TimeoutError) as exc:  # ConsoleTimeout is a RigError
        return {"line": None, "seconds": round(time.monotonic() - start, 2), "error": str(exc)}


def _banner_step(banner: dict, blank: bool | None) -> dict:
    if banner["line"] is not None:
        return {"name": "banner", "ok": True, "seconds": banner["seconds"], "detail": banner["line"][:120]}
    if blank:
        return {"name": "banner", "ok": True, "seconds": banner["seconds"],
                "detail": "no line, as expected: the flash read back blank, so nothing boots to print one"}
    return {"name": "banner", "ok": False, "seconds": banner["seconds"],
            "detail": f"nothing on the console within {BANNER_S:.0f} s of power-on"}


def _rom_loader(drivers) -> str:
    with drivers.powered_rom_loader().loader(after="hard-reset") as esp:
        return f"{esp.get_chip_description()} answers"


def _probe(drivers) -> str:
    return f"probe connects, readout protection level {drivers.powered_probe().read_rdp_level()}"


def _flash_read(drivers, found: dict) -> str:
    layout = LAYOUTS[drivers.board.flash_layout]
    offset, size = min(p.offset for p in layout.partitions), FLASH_READ
    data = drivers.read_flash(offset, size)
    if len(data) != size:
        raise RigError(f"read {len(data)} of {size} bytes at 0x{offset:x}")
    found["blank"] = data == bytes([layout.geometry.erased]) * size
    return f"{size} bytes at 0x{offset:x}" + (" (blank)" if found["blank"] else "")


def check_boards(boards, store, on_health=None, holder: str = "rig health",
                 lease_timeout: float = 60.0, coordinator=None) -> list[Health]:
    """Health-check `boards` (rig.lab Board specs) one after the other, record each in `store`
    (a failure quarantines the board); `on_health(Health)` sees each as it ends. Remote boards
    are reserved through `coordinator` (rig.lab.coordinator.Coordinator)."""
    from rig.drivers.pool import BoardPool

    pool = BoardPool(holder=holder, lease_timeout=lease_timeout, coordinator=coordinator)
    checked = []
    try:
        for spec in boards:
            try:
                health = check(pool.take(spec))
            except RigError as exc:  # the board could not even be opened (lease, probe, console)
                health = Health(spec.id, spec.variant, ok=False,
                                steps=[{"name": "open", "ok": False, "seconds": 0.0, "detail": str(exc)}])
            finally:
                pool.release()
            store.add_health_check(spec.id, spec.variant, health.ok, health.reason, health.steps, health.console)
            checked.append(health)
            if on_health:
                on_health(health)
    finally:
        pool.release()
    return checked


def quarantine_by_failures(store, boards, after: int = QUARANTINE_AFTER) -> dict[str, str]:
    """Quarantine each of `boards` that failed `after` different tests in a row, each passing on a
    sibling board; {board: reason} of those quarantined now."""
    if after <= 0:
        return {}
    already = store.quarantined()
    done = {}
    for board in boards:
        if board in already:
            continue
        since = store.released_at(board)
        history = [r for r in store.results(board=board) if r["outcome"] != "skipped"
                   and (since is None or r["finished_at"] > since)]
        streak: list[dict] = []
        for r in reversed(history):
            if r["outcome"] == "passed":
                break
            streak.append(r)
        evidence = {}
        for r in streak:
            if r["test_key"] in evidence:
                continue
            siblings = _latest_by_board(store.results(test_key=r["test_key"]), exclude=board)
            passing = sorted(b for b, outcome in siblings.items() if outcome == "passed")
            if passing:
                evidence[r["test_key"]] = passing
        if len(evidence) >= after:
            reason = (f"failed {len(evidence)} different tests in a row that pass on other boards: "
                      + "; ".join(f"{key} (passes on {', '.join(on)})" for key, on in list(evidence.items())[:after]))
            if store.quarantine(board, reason, by="rig test history"):
                done[board] = reason
    return done


def _latest_by_board(rows: list[dict], exclude: str) -> dict[str, str]:
    latest = {}
    for r in rows:  # in id order: the last one per board wins
        if r["board"] and r["board"] != exclude and r["outcome"] != "skipped":
            latest[r["board"]] = r["outcome"]
    return latest
