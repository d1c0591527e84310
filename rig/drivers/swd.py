"""PyOCDDriver: an STM32 board's SWD probe through pyocd's Python API.

labgrid has no pyocd driver (its open request #1944). This one binds to rig's RigDebugProbe
resource and picks the probe by unique id, so a real ST-LINK and a virtual probe of `rig lab up`
(reached by pyocd through its probe plugin) are driven by the same code.

A session is opened per operation and closed after: the probe is not held between operations, so
the firmware runs undisturbed and `pyocd` on the command line can still reach the board. Addresses
are flash offsets (as in rig.image.layouts); the driver adds the bus base of the part.
"""

import contextlib
import logging

import attr
from labgrid.driver.common import Driver
from labgrid.factory import target_factory
from labgrid.step import step

from rig.drivers import optionbytes
from rig.drivers.layout import board_layout, check_range
from rig.drivers.protocol import FlashProtocol, Lock, Progress, Region, regions_sha256
from rig.errors import RigError

READ_CHUNK = 64 * 1024  # bytes per probe read when the caller follows progress


@target_factory.reg_driver
@attr.s(eq=False)
class PyOCDDriver(Driver, FlashProtocol):
    """Erase, program, verify and read flash, reset, halt and set readout protection over SWD.

    Args:
        frequency (int): SWD clock in Hz (pyocd's default when not set)
    """

    bindings = {"probe": "RigDebugProbe", "board": "RigBoard"}
    frequency = attr.ib(default=None, validator=attr.validators.optional(attr.validators.instance_of(int)))

    def __attrs_post_init__(self):
        super().__attrs_post_init__()
        self.last_image_sha256 = None  # of the last image programmed through this driver

    def on_activate(self):
        self.layout = board_layout(self.board)
        # pyocd logs every connect at INFO; labgrid's step log already says what happens.
        logging.getLogger("pyocd").setLevel(logging.WARNING)

    @contextlib.contextmanager
    def session(self, connect_mode: str = "attach"):
        """An open pyocd session on this board's probe ("attach" leaves the core running)."""
        from pyocd.core import exceptions as pyocd_errors
        from pyocd.core.helpers import ConnectHelper

        options = {"connect_mode": connect_mode, "hide_programming_progress": True, "smart_flash": False,
                   "resume_on_disconnect": connect_mode == "attach"}
        if self.frequency:
            options["frequency"] = self.frequency
        uid = self.probe.unique_id
        try:
            session = ConnectHelper.session_with_chosen_probe(
                blocking=False, unique_id=uid, target_override=self.probe.target_type,
                auto_open=False, options=options)
        except pyocd_errors.Error as exc:
            raise RigError(f"debug probe {uid}: {exc}") from exc
        if session is None:
            raise RigError(f"debug probe {uid} not found; check `pyocd list` (real probe plugged in? "
                           "virtual rack started with `rig lab up`?)")
        try:
            session.open()
        except pyocd_errors.Error as exc:
            raise RigError(f"debug probe {uid}: cannot connect to {self.probe.target_type}: {exc}") from exc
        try:
            yield session
        except pyocd_errors.Error as exc:
            raise RigError(f"debug probe {uid}: {exc}") from exc
        finally:
            session.close()

    def _bus(self, offset: int) -> int:
        return self.layout.geometry.base + offset

    @Driver.check_active
    @step(args=["offset", "size"])
    def erase(self, offset: int | None = None, size: int | None = None) -> None:
        """Erase the whole flash, or the sectors covering [offset, offset+size)."""
        from pyocd.flash.eraser import FlashEraser

        with self.session(connect_mode="halt") as session:
            if offset is None:
                FlashEraser(session, FlashEraser.Mode.CHIP).erase()
            else:
                if size is None:
                    raise RigError(f"erase 0x{offset:x}: give the size too, or neither to erase the whole flash")
                check_range(self.layout, offset, size)
                FlashEraser(session, FlashEraser.Mode.SECTOR).erase([(self._bus(offset), self._bus(offset + size))])

    @Driver.check_active
    def write_regions(self, regions, verify: bool = True, progress: Progress | None = None) -> None:
        """Program several (offset, data) regions in one probe session (the sectors they cover are
        erased first; bytes around them are kept), then read each back."""
        from pyocd.flash.loader import MemoryLoader

        for offset, data in regions:
            check_range(self.layout, offset, len(data))
        total = sum(len(data) for _, data in regions)
        report = (lambda fraction: progress(int(fraction * total), total)) if progress else None
        with self.session(connect_mode="halt") as session:
            loader = MemoryLoader(session, progress=report, chip_erase="sector", smart_flash=False,
                                  keep_unwritten=True)
            for offset, data in regions:
                loader.add_data(self._bus(offset), data)
            loader.commit()
            if verify:
                for offset, data in regions:
                    self._compare(session.target, data, offset)
        self.last_image_sha256 = regions_sha256(regions)

    @Driver.check_active
    def differing(self, regions) -> list[Region]:
        """The (offset, data) regions whose bytes the flash does not hold yet."""
        with self.session() as session:
            return [(offset, data) for offset, data in regions
                    if bytes(session.target.read_memory_block8(self._bus(offset), len(data))) != data]

    @Driver.check_active
    @step(args=["offset", "size"])
    def read(self, offset: int, size: int, progress: Progress | None = None) -> bytes:
        check_range(self.layout, offset, size)
        with self.session() as session:
            if progress is None:
                return bytes(session.target.read_memory_block8(self._bus(offset), size))
            data = bytearray()
            while len(data) < size:
                n = min(READ_CHUNK, size - len(data))
                data += bytes(session.target.read_memory_block8(self._bus(offset + len(data)), n))
                progress(len(data), size)
            return bytes(data)

    @Driver.check_active
    @step(args=["offset"])
    def verify(self, data: bytes, offset: int) -> None:
        """RigError naming the first differing offset when flash does not hold `data` (and the bytes
        there, unless it lies in a key area)."""
        check_range(self.layout, offset, len(data))
        with self.session() as session:
            self._compare(session.target, data, offset)

    def _compare(self, target, data: bytes, offset: int) -> None:
        found = bytes(target.read_memory_block8(self._bus(offset), len(data)))
        if found != data:
            first = next(i for i, (a, b) in enumerate(zip(found, data, strict=True)) if a != b)
            secret = self.layout.secret_at(offset + first)
            if secret is not None:  # a byte of a device key would end up in logs and records
                raise RigError(f"verify failed: flash 0x{offset + first:x} in the {secret.name} partition (a key "
                               "area: its bytes are not shown) differs from what was written; erase and program again")
            raise RigError(f"verify failed: flash 0x{offset + first:x} holds 0x{found[first]:02x}, "
                           f"expected 0x{data[first]:02x}; erase and program again")

    @Driver.check_active
    @step(args=["halt"])
    def reset(self, halt: bool = False) -> None:
        """Reset the core through the probe (reset cause `software` or `pin`, per the probe's method)."""
        with self.session() as session:
            if halt:
                session.target.reset_and_halt()
                session.options["resume_on_disconnect"] = False
            else:
                session.target.reset()

    @Driver.check_active
    @step()
    def halt(self) -> None:
        """Stop the core; it stays halted until `resume()` or a reset."""
        with self.session() as session:
            session.target.halt()
            session.options["resume_on_disconnect"] = False

    @Driver.check_active
    @step()
    def resume(self) -> None:
        with self.session() as session:
            session.target.resume()

    @Driver.check_active
    def read_rdp_level(self) -> int:
        """The readout protection level in force: 0 (open), 1 (flash locked) or 2 (permanent)."""
        with self.session() as session:
            return optionbytes.read_level(session.target, self.board.variant)

    @Driver.check_active
    def lock(self) -> Lock | None:
        """Readout protection from the option bytes in force (readable at every level)."""
        level = self.read_rdp_level()
        if level == 0:
            return None
        if level == 2:
            return Lock("readout protection level 2 (the debug port is disabled for good)",
                        "none, level 2 is permanent: fit a board that is not locked", blocks_flashing=True)
        return Lock("readout protection level 1 (the probe can neither read nor write the flash)",
                    "the regression to level 0, which mass-erases the flash (STM32CubeProgrammer "
                    "`-c port=SWD -ob RDP=0xAA`, or `rig provision run --board "
                    f"{self.target.name} --force --option {self.board.variant}.rdp=0`), or a board that "
                    "is not locked", blocks_flashing=True)

    @Driver.check_active
    @step(args=["level"])
    def set_rdp_level(self, level: int, i_know_level_2_is_permanent: bool = False) -> None:
        """Program readout protection. 1 -> 0 mass-erases the flash, as the silicon does."""
        if level not in (0, 1, 2):
            raise RigError(f"RDP level {level} does not exist; use 0, 1 or 2")
        if level == 2 and not i_know_level_2_is_permanent:
            raise RigError("RDP level 2 disables debug for good on real silicon; pass "
                           "i_know_level_2_is_permanent=True if you mean it")
        with self.session(connect_mode="halt") as session:
            optionbytes.write_level(session.target, self.board.variant, level)
