"""What a chip does from reset: its boot ROM / bootloader model, then the app model.

The chip models are imported when a board of that family boots, so a rack of one family never
loads the other's.
"""

from rig.sim import app
from rig.sim.board import BoardContext


def run(ctx: BoardContext) -> None:
    if ctx.variant == "esp32":
        if ctx.boot_mode == "download":
            from rig.sim.esp32 import rom

            rom.run(ctx)  # serves esptool until the next reset
            return
        from rig.sim.esp32 import bootloader as esp_bootloader

        booted = esp_bootloader.boot(ctx)
    else:
        from rig.sim.stm32 import mcuboot

        booted = mcuboot.boot(ctx)
    if booted is not None:
        app.run(ctx, booted)
