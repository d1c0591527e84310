"""The ESP32 app model: what rig's reference firmware does on an ESP32, driven by the booted image's descriptor.

The ESP32 stays modelled (no Xtensa toolchain here; the STM32 boards execute the firmware itself,
rig.sim.stm32.firmware). The bootloader model hands over a BootedImage; the app descriptor inside
it (rig/image/appdesc.py) says which build this is and which fault it was built with, and the
model behaves as that binary would, printing the lines of docs/console.md:

- boot line (variant, version, slot, reset cause, boots since power-on from RAM that survives resets);
- on a provisioned board, its identity from encrypted NVS (rig.sim.esp32.identity);
- crash-on-boot: `rig: hardfault`, then a software reset (the panic handler's esp_restart);
- hang: stops feeding the watchdog, which resets the chip after its timeout;
- after the health check, `rig: health ok` or `rig: health fail` (fail-health); a healthy image
  that is not built with no-confirm confirms itself: its otadata entry PENDING_VERIFY -> VALID
  (rig.image.otadata, esp_ota_mark_app_valid_cancel_rollback);
- `rig: alive uptime=N` every second while it runs;
- console input: text commands, `ota <url>` (rig.sim.esp32.ota_client).

An image without a descriptor for this chip is not rig firmware: its code runs off into the weeds,
prints nothing useful and faults; the chip resets.
"""

import time

from rig.errors import RigError
from rig.image import appdesc, otadata
from rig.sim.board import BoardContext, BootedImage
from rig.sim.broken import broken
from rig.sim.esp32 import identity
from rig.sim.esp32.ota_client import Console
from rig.sim.flash import FlashError
from rig.variants import facts

ALIVE_PERIOD = 1.0  # seconds between heartbeats
HEALTH_DELAY = 0.3  # seconds from boot to the health verdict
CRASH_DELAY = 0.05  # seconds a crashing image runs before the reset (keeps a boot loop from spinning)


def run(ctx: BoardContext, booted: BootedImage) -> None:
    boots = ctx.retained["boots"] = ctx.retained.get("boots", 0) + 1
    try:
        desc = appdesc.find(booted.image, ctx.variant, booted.header_size)
    except RigError:
        desc = None
    if desc is None or facts(desc.variant) is not facts(ctx.variant):  # another part's firmware
        ctx.sleep(CRASH_DELAY)
        ctx.reset("software")
    ctx.log(f"rig: boot variant={desc.variant} version={desc.version_str} slot={booted.slot} "
            f"reset={ctx.reset_cause} boots={boots} fault={desc.fault}")
    identity.announce(ctx)  # the identity the provisioning station wrote into NVS, if any
    if desc.fault == "crash-on-boot":
        ctx.sleep(CRASH_DELAY)
        ctx.log("rig: hardfault")
        ctx.reset("software")
    if desc.fault == "hang":
        if broken("watchdog-never-bites"):  # test-only fault switch (rig/sim/broken.py)
            while True:
                ctx.sleep(60)
        ctx.sleep(ctx.watchdog_timeout)
        ctx.reset("watchdog")
    if broken("confirm-before-health") and desc.fault != "no-confirm" and _confirm(ctx, booted):
        ctx.log("rig: confirmed")  # test-only fault switch (rig/sim/broken.py): before the health check
    _serve(ctx, booted, desc)


def _serve(ctx: BoardContext, booted: BootedImage, desc: appdesc.AppDescriptor) -> None:
    """The main loop: health check and confirm once, heartbeat, console input; runs until reset."""
    console = Console(ctx, booted).feed
    start = time.monotonic()
    checked = False
    uptime = 0
    while True:
        now = time.monotonic() - start
        due = HEALTH_DELAY if not checked else (uptime + 1) * ALIVE_PERIOD
        if now < due:
            data = ctx.read(due - now)
            if data:
                console(data)
        elif not checked:
            checked = True
            healthy = desc.fault != "fail-health"
            ctx.log(f"rig: health {'ok' if healthy else 'fail'}")
            if healthy and desc.fault != "no-confirm" and not broken("confirm-before-health") and _confirm(ctx, booted):
                ctx.log("rig: confirmed")
        else:
            uptime += 1
            ctx.log(f"rig: alive uptime={uptime}")


def _confirm(ctx: BoardContext, booted: BootedImage) -> bool:
    """Mark the running image good, as esp_ota_mark_app_valid_cancel_rollback."""
    if broken("confirm-not-persisted"):
        return True  # test-only fault switch (rig/sim/broken.py): reported, never written
    try:
        _confirm_otadata(ctx, booted.slot)
    except (RigError, FlashError):
        return False  # the real call returns an error code; the firmware then stays unconfirmed
    return True


def _confirm_otadata(ctx: BoardContext, running_slot: int) -> None:
    part = ctx.layout.part("otadata")
    apps = sum(1 for p in ctx.layout.partitions if p.name.startswith("ota_"))
    table = otadata.parse(ctx.flash.read(part.offset, otadata.SIZE))
    index = table.active()
    if index is None or table.active_slot(apps) != running_slot:
        return  # booted without otadata (factory state) or by fallback: nothing to cancel
    if table.entries[index].state != otadata.State.PENDING_VERIFY:
        return
    # ESP-IDF rewrites the entry's sector: erase it, then write the 32-byte entry.
    entry = table.with_state(index, otadata.State.VALID).entries[index].pack()
    ctx.flash.erase(part.offset + index * otadata.SECTOR, otadata.SECTOR)
    ctx.flash.write(part.offset + index * otadata.SECTOR, entry)
