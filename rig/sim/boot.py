"""What a chip does from reset: its boot ROM / bootloader model, then the application.

The ESP32 runs the app model (rig.sim.esp32.app: no Xtensa toolchain here, so rig's ESP32
firmware is modelled). An STM32 runs MCUboot's model and then the booted image's own machine code
on the emulated core (rig.sim.stm32.firmware): rig's reference firmware itself, SMP server,
delta applier and confirm included - no Python stands in for it.

The chip models are imported when a board of that family boots, so a rack of one family never
loads the other's.
"""

from rig.sim.board import BoardContext
from rig.variants import Bootloader, facts


def run(ctx: BoardContext) -> None:
    if facts(ctx.variant).bootloader is Bootloader.ESP_IDF:
        if ctx.boot_mode == "download":
            from rig.sim.esp32 import rom

            # Serves esptool until the next reset; returns when the host has the ROM run the
            # app in flash (esptool --no-stub run), which then boots as from SPI flash.
            rom.run(ctx)
        from rig.sim.esp32 import app
        from rig.sim.esp32 import bootloader as esp_bootloader

        booted = esp_bootloader.boot(ctx)
        if booted is not None:
            app.run(ctx, booted)
    else:
        from rig.sim.stm32 import firmware, mcuboot

        booted = mcuboot.boot(ctx)
        if booted is not None:
            firmware.run(ctx, booted)  # the image's own code, on the emulated core
