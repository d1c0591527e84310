"""What a chip does from reset: its boot ROM / bootloader model, then the app model.

The chip models are imported when a board of that family boots, so a rack of one family never
loads the other's.
"""

from rig.sim import app
from rig.sim.board import BoardContext
from rig.variants import Bootloader, facts


def run(ctx: BoardContext) -> None:
    if facts(ctx.variant).bootloader is Bootloader.ESP_IDF:
        if ctx.boot_mode == "download":
            from rig.sim.esp32 import rom

            # Serves esptool until the next reset; returns when the host has the ROM run the
            # app in flash (esptool --no-stub run), which then boots as from SPI flash.
            rom.run(ctx)
        from rig.sim.esp32 import bootloader as esp_bootloader

        booted = esp_bootloader.boot(ctx)
    else:
        from rig.sim.stm32 import mcuboot

        booted = mcuboot.boot(ctx)
    if booted is not None:
        app.run(ctx, booted)
