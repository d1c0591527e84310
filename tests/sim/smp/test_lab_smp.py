"""SMP through the rack daemon: `rig lab up` as a user runs it, smpclient on the board's pty."""

import asyncio
import json
from pathlib import Path

from smpclient import SMPClient
from smpclient.generics import success
from smpclient.requests.image_management import ImageStatesRead, ImageStatesWrite
from smpclient.requests.os_management import EchoWrite, ResetWrite
from smpclient.transport.serial import SMPSerialTransport

from rig.image import mcuboot
from rig.sim import registry
from rig.sim.stm32 import vmcuboot
from tests.sim.smp.conftest import layout_of, program, read_console_until

BOARDS = {"stm32h7-1": "stm32h7", "stm32l0-1": "stm32l0"}


def test_ota_over_smp_on_the_virtual_rack(lab_factory, signer, make_image):
    lab = lab_factory(boards=tuple(BOARDS))
    for board_id, variant in BOARDS.items():  # blank chips, programmed by a probe before power-on
        state = lab.state / board_id
        state.mkdir(parents=True)
        program(state / "flash.bin", layout_of(variant), {
            "mcuboot": vmcuboot.build(layout_of(variant), [signer.public]),
            "slot0": make_image(variant, "1.0.0"),
        })
    lab.up()

    async def ota(pty: str, image: bytes) -> tuple:
        transport = SMPSerialTransport()
        async with SMPClient(transport, pty, timeout_s=3.0) as client:
            echo = await client.request(EchoWrite(d="rack"))
            offsets = [off async for off in client.upload(image)]
            digest = mcuboot.parse(image).find(mcuboot.TLV_SHA256)[0].value
            await client.request(ImageStatesWrite(hash=digest))
            await client.request(ResetWrite())
            # The first boot may still be confirming 1.0.0 when the upload ends: wait for the new boot's lines.
            console = await read_console_until(transport, "rig: confirmed", after="reset=software")
            return echo, offsets, console, await client.request(ImageStatesRead())

    # The registry file the daemon announces itself in (what the pyocd probe plugin reads too).
    entry = json.loads((Path(lab.env["RIG_RUNTIME_DIR"]) / "labs" / f"{registry.lab_name(lab.rack)}.json").read_text())
    ptys = {board_id: b["console"]["pty"] for board_id, b in entry["boards"].items()}
    for board_id, variant in BOARDS.items():
        image = make_image(variant, "1.1.0", size=12_000)
        echo, offsets, console, state = asyncio.run(ota(ptys[board_id], image))
        assert success(echo) and echo.r == "rack"
        assert offsets[-1] == len(image)
        assert f"rig: boot variant={variant} version=1.1.0+0 slot=0 reset=software" in console
        assert [(i.slot, i.version, i.active, i.confirmed) for i in state.images] == [
            (0, "1.1.0", True, True), (1, "1.0.0", False, False)]
