"""The app model: what rig's reference firmware does on silicon, driven by the flashed image's descriptor.

The bootloader model hands over a BootedImage; the app descriptor inside it (rig/image/appdesc.py)
says which build this is and which fault it was built with, and the model behaves as that binary
would, printing the lines of docs/console.md:

- boot line (variant, version, slot, reset cause, boots since power-on from RAM that survives resets);
- crash-on-boot: `rig: hardfault`, then a software reset (the HardFault handler's NVIC_SystemReset);
- hang: stops feeding the watchdog, which resets the chip after its timeout;
- after the health check, `rig: health ok` or `rig: health fail` (fail-health); a healthy image
  that is not built with no-confirm confirms itself - MCUboot: image_ok in the primary slot's
  trailer (rig.image.trailer); ESP32: its otadata entry PENDING_VERIFY -> VALID (rig.image.otadata);
- `rig: alive uptime=N` every second while it runs;
- console input: MCUmgr SMP frames on the STM32 boards (rig.sim.smp), as the firmware serves them;
  on the ESP32 text commands, `ota <url>` (rig.sim.esp32.ota_client).

An image without a descriptor for this chip is not rig firmware: its code runs off into the weeds,
prints nothing useful and faults; the chip resets.
"""

import time

from rig.errors import RigError
from rig.image import appdesc, otadata
from rig.image.trailer import Trailer
from rig.sim.board import BoardContext, BootedImage
from rig.sim.broken import broken
from rig.sim.flash import FlashError
from rig.variants import Bootloader, Delivery, facts

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
    if facts(ctx.variant).bootloader is Bootloader.ESP_IDF:
        from rig.sim.esp32 import identity

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
    console = _console_handler(ctx, booted)
    start = time.monotonic()
    checked = False
    uptime = 0
    while True:
        now = time.monotonic() - start
        due = HEALTH_DELAY if not checked else (uptime + 1) * ALIVE_PERIOD
        if now < due:
            data = ctx.read(due - now)
            if data and console:
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
    """Mark the running image good, as boot_write_img_confirmed / esp_ota_mark_app_valid_cancel_rollback."""
    if broken("confirm-not-persisted"):
        return True  # test-only fault switch (rig/sim/broken.py): reported, never written
    try:
        if facts(ctx.variant).bootloader is Bootloader.ESP_IDF:
            _confirm_otadata(ctx, booted.slot)
        else:
            _confirm_trailer(ctx)
    except (RigError, FlashError):
        return False  # the real call returns an error code; the firmware then stays unconfirmed
    return True


def _confirm_trailer(ctx: BoardContext) -> None:
    slot = ctx.layout.part("slot0")
    trailer = Trailer.for_layout(ctx.layout, "slot0")
    state = trailer.read(ctx.flash.read(slot.offset + slot.size - trailer.size, trailer.size))
    for off, data in trailer.confirm(state):
        ctx.flash.write(slot.offset + off, data)


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


def _console_handler(ctx: BoardContext, booted: BootedImage):
    """What the firmware does with console input: SMP on the MCUboot boards, text commands (`ota <url>`)
    on the ESP32."""
    if facts(ctx.variant).delivery is Delivery.HTTP_PULL:
        from rig.sim.esp32.ota_client import Console

        return Console(ctx, booted).feed
    from rig.sim.smp import SmpServer  # imported late: the daemon serves ESP32-only racks without it

    return SmpServer(ctx).feed
