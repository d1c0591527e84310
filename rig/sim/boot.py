"""What a chip does from reset: its boot ROM / bootloader model, then the application.

The ESP32 runs the app model (rig.sim.app). An STM32 runs, per the lab's `stm32_core` choice
(`rig lab up --stm32-core`), the app model ("model") or the booted image's own machine code on
the emulated core ("emulated", rig.sim.stm32.firmware).

The chip models are imported when a board of that family boots, so a rack of one family never
loads the other's.
"""

from rig.sim import app
from rig.sim.board import BoardContext
from rig.variants import Bootloader, facts

STM32_CORES = ("model", "emulated")


def run(ctx: BoardContext, stm32_core: str = "model") -> None:
    if facts(ctx.variant).bootloader is Bootloader.ESP_IDF:
        if ctx.boot_mode == "download":
            from rig.sim.esp32 import rom

            # Serves esptool until the next reset; returns when the host has the ROM run the
            # app in flash (esptool --no-stub run), which then boots as from SPI flash.
            rom.run(ctx)
        from rig.sim.esp32 import bootloader as esp_bootloader

        booted = esp_bootloader.boot(ctx)
        if booted is not None:
            app.run(ctx, booted)
    else:
        from rig.sim.stm32 import mcuboot

        booted = mcuboot.boot(ctx)
        if booted is not None and stm32_core == "emulated":
            from rig.sim.stm32 import firmware

            firmware.run(ctx, booted)  # the image's own code, on the emulated core
        elif booted is not None:
            app.run(ctx, booted)
