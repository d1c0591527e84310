"""The Cortex-M core as the debugger sees it: halt/run, core registers, resets, vector catch.

The core does not execute Thumb code. When the debugger resumes it at an entry point of a
CMSIS flash algorithm that pyocd has loaded into RAM (recognised by the algorithm's own bytes in
RAM, compared with the algorithm of the target type), the core performs that function's
contract - Init, UnInit, EraseSector(adr), EraseChip, ProgramPage(adr, sz, buf) - on the flash
model, puts the result in r0 and halts on the BKPT at LR, exactly what the algorithm returns on
silicon. Why not run the algorithm: the flash rules (write unit, no rewrite, sector erase, erased
value) live in rig.sim.flash.Flash, and the algorithms are opaque vendor blobs that would need a
register-exact FLASH peripheral under an instruction emulator to reach the same rules; the
contract is the documented, stable interface between pyocd and the algorithm, so pyocd's side
of it - loading, buffering, page layout, verify, error reporting - runs unchanged.

Resuming anywhere else starts the firmware: the board's own thread boots it (bootloader model,
then the firmware on the emulated core). Halting stops that thread; a later resume reboots the
firmware with the cause of the last reset, since MCUboot's model cannot be frozen mid-instruction.

Once the firmware runs on the emulated core (rig.sim.stm32.machine) the debug registers act on
that core instead: C_HALT parks it where it is, C_STEP executes one instruction, registers go
through DCRSR/DCRDR, the FPB's comparators are hardware breakpoints, and a reset with
DEMCR.VC_CORERESET halts it at the reset vector of the image MCUboot's model hands over to (the
model itself has no instructions to halt in). The flash algorithm contract above still serves
pyocd's flash programming while that core is halted.
"""

import struct

from pyocd.core.memory_map import MemoryType
from pyocd.target import TARGET

from rig.sim.flash import FlashError
from rig.sim.stm32 import pyocd_target
from rig.sim.stm32.firmware import DEVICE

DBGKEY = 0xA05F << 16
C_DEBUGEN, C_HALT, C_STEP = 1 << 0, 1 << 1, 1 << 2
S_REGRDY, S_HALT, S_RETIRE_ST, S_RESET_ST = 1 << 16, 1 << 17, 1 << 24, 1 << 25
DFSR_HALTED, DFSR_BKPT, DFSR_VCATCH = 1 << 0, 1 << 1, 1 << 3
DEMCR_VC_CORERESET = 1 << 0
DCRSR_REGWNR = 1 << 16
AIRCR_VECTKEY = 0x05FA << 16
AIRCR_VECTRESET, AIRCR_SYSRESETREQ = 1 << 0, 1 << 2
REG_SP, REG_LR, REG_PC, REG_XPSR, REG_MSP = 13, 14, 15, 16, 17
XPSR_THUMB = 1 << 24


def _algorithms(target_type: str) -> list[dict]:
    """The flash algorithms pyocd loads for `-t target_type`: those of its flash regions."""
    pyocd_target.register()  # the STM32L073's target type is rig's own
    regions = TARGET[target_type].MEMORY_MAP.iter_matching_regions(type=MemoryType.FLASH)
    return list({id(r.algo): r.algo for r in regions}.values())  # the H7's two banks share one


def _packed(algo: dict) -> bytes:
    return struct.pack(f"<{len(algo['instructions'])}I", *algo["instructions"])


class Core:
    def __init__(self, chip):
        self.chip = chip
        self.regs: dict[int, int] = {}
        self.dhcsr_c = 0  # C_* control bits as last written
        self.demcr = 0
        self.dfsr = 0
        self.dcrdr = 0
        self.halted = False
        self.in_reset = False
        self._reset_seen = False  # S_RESET_ST: a reset happened since DHCSR was last read
        self._pin_machine = None  # the emulated core the firmware ran on when nRST went low
        # Whether the last reset of the emulated core was caught, decided as it left reset (None:
        # no such reset waits for MCUboot's model to hand over).
        self._caught: bool | None = None
        # The debugger pointed the PC at a flash algorithm: registers and resume follow the
        # contract below even on a board whose firmware runs on the emulated core.
        self._algorithm = False
        self._cause = "power-on"  # cause of the last reset, for the boot a resume starts
        self._algos = [(a, _packed(a)) for a in _algorithms(chip.part.target_type)]

    # -- resets
    def power_on(self) -> None:
        self.dhcsr_c = self.demcr = self.dfsr = 0
        self.halted = self.in_reset = self._algorithm = False
        self._pin_machine = None
        self._caught = None
        self._load_vectors()
        self._cause = "power-on"

    def reset(self, cause: str) -> None:
        """A system reset (SYSRESETREQ, nRST released, option byte load): catch it or boot."""
        self._algorithm = False
        self._caught = None
        machine = self._machine()
        if cause == "pin":
            # Held in reset by the pin, the core is not the board's current run any more: the
            # reset is still that core's if the firmware ran on it when the pin went low.
            machine, self._pin_machine = machine or self._pin_machine, None
        if machine is not None:
            # The emulated core boots through MCUboot's model again and, with vector catch,
            # halts at the reset vector of the image it is handed. Silicon decides the catch as
            # the core leaves reset, not once a bootloader has run: pyocd's H7 connect restores
            # DEMCR 10 ms after releasing nRST, often before the model hands over (at once with
            # the UART's datasheet time), and the firmware then ran and printed its boot line.
            self._caught = self._catch()
            self.halted = False
            self._reset_seen = True
            self.chip.board.hold("debug")
            self.chip.board.release("debug", cause=cause)
            return
        self.chip.board.hold("debug")
        self._cause = cause
        self._reset_seen = True
        self._load_vectors()
        if self.dhcsr_c & C_DEBUGEN and self.demcr & DEMCR_VC_CORERESET:
            self.halted = True
            self.dfsr |= DFSR_VCATCH
        else:
            self.halted = False
            self.chip.board.release("debug", cause=cause)

    def set_nreset(self, asserted: bool) -> None:
        if asserted:
            if not self.in_reset:
                self._pin_machine = self._machine()
            self.in_reset = True
            self._reset_seen = True
            self.chip.board.hold("debug")
        elif self.in_reset:
            self.in_reset = False
            self.reset("pin")

    def _load_vectors(self) -> None:
        # The vector table at the start of flash gives the initial MSP and the reset handler.
        sp, pc = struct.unpack("<II", self.chip.flash.read(0, 8))
        self.regs = {REG_SP: sp, REG_MSP: sp, REG_PC: pc & ~1, REG_XPSR: XPSR_THUMB, REG_LR: 0xFFFF_FFFF}

    # -- debug registers
    def _machine(self):
        """The board's emulated core while firmware runs or is halted on it (and no flash algorithm
        does). A machine left from an earlier boot is not the core's state once MCUboot's model
        boots nothing (slot0 unbootable, a board held): halts, registers and resets then take the
        model's path, which holds the board as silicon's core halts in the bootloader."""
        machine = self.chip.board.devices.get(DEVICE)
        if machine is None or self._algorithm or not machine.live:
            return None
        machine.catch_reset = self._handover_catch  # a machine of a new power-on learns of this debugger too
        return machine

    def _handover_catch(self) -> bool:
        """Whether the core halts at the reset vector MCUboot's model hands over to: as decided
        when a reset of the debugger's left it, else (a reset the firmware made) as now."""
        caught, self._caught = self._caught, None
        return self._catch() if caught is None else caught

    def _catch(self) -> bool:
        # C_HALT survives a system reset, and vector catch halts at the reset vector.
        return bool(self.dhcsr_c & C_DEBUGEN and (self.dhcsr_c & C_HALT or self.demcr & DEMCR_VC_CORERESET))

    def read_dhcsr(self) -> int:
        machine = self._machine()
        if machine is not None:
            self.halted = machine.halted
            if machine.breakpoint_hit:
                machine.breakpoint_hit = False
                self.dfsr |= DFSR_BKPT
        if self.halted:
            # Entering debug state sets it (a halt, a step, a breakpoint, a catch, the flash
            # algorithm's BKPT). pyocd's connect writes DHCSR back with C_DEBUGEN added to what it
            # reads: a halted core read without C_HALT would be resumed by that write.
            self.dhcsr_c |= C_HALT
        value = (self.dhcsr_c & 0xF) | S_REGRDY
        value |= S_HALT if self.halted else S_RETIRE_ST
        if self._reset_seen or self.in_reset:
            value |= S_RESET_ST
            self._reset_seen = self.in_reset
        return value

    def write_dhcsr(self, value: int) -> None:
        if value & 0xFFFF_0000 != DBGKEY:
            return  # writes without the key are ignored by the core
        self.dhcsr_c = value & 0xF
        if self.in_reset:
            return
        machine = self._machine()
        if machine is not None:
            self._debug_emulated(machine, value)
            return
        idle = self.chip.board.devices.get(DEVICE)
        if idle is not None and not self._algorithm and not (value & C_DEBUGEN and value & C_HALT):
            idle.debug_resume()  # a core not executing now: no halt left pending for when it does
        if value & C_DEBUGEN and value & C_HALT:
            if not self.halted:
                self.halted = True
                self.dfsr |= DFSR_HALTED
                self.chip.board.hold("debug")
        elif self.halted and not value & C_STEP:  # a single step has no instruction to run: stay halted
            self._resume()

    def _debug_emulated(self, machine, value: int) -> None:
        if value & C_DEBUGEN and value & C_HALT:
            if not machine.halted:
                machine.debug_halt()
                self.dfsr |= DFSR_HALTED
        elif value & C_DEBUGEN and value & C_STEP and machine.halted:
            machine.debug_step()
        elif machine.halted or not value & C_HALT:
            machine.debug_resume()

    def set_breakpoints(self, addresses: set[int]) -> None:
        machine = self._machine()
        if machine is not None:
            machine.set_breakpoints(addresses)

    def write_dcrsr(self, value: int) -> None:
        sel = value & 0x7F
        if value & DCRSR_REGWNR and sel == REG_PC:
            if (parked := self._machine()) is not None:
                self.halted = parked.halted  # the state the algorithm's calls start from
            self._algorithm = self._algorithm_entry(self.dcrdr) is not None
        machine = self._machine()
        if machine is not None and machine.halted:
            if value & DCRSR_REGWNR:
                machine.write_core_register(sel, self.dcrdr)
            else:
                self.dcrdr = machine.read_core_register(sel)
            return
        if value & DCRSR_REGWNR:
            self.regs[sel] = self.dcrdr
            if sel in (REG_SP, REG_MSP):
                self.regs[REG_SP] = self.regs[REG_MSP] = self.dcrdr
        else:
            self.dcrdr = self.regs.get(sel, 0)

    def write_aircr(self, value: int) -> None:
        if value & 0xFFFF_0000 == AIRCR_VECTKEY and value & (AIRCR_SYSRESETREQ | AIRCR_VECTRESET):
            self.reset("software")

    # -- running
    def _resume(self) -> None:
        entry = self._algorithm_entry(self.regs.get(REG_PC, 0))
        if entry is None:
            # Not a flash algorithm function: the firmware boots again. A core halted on the
            # emulated core stays parked under the algorithm (its registers are the algorithm's
            # here): hold the board so that run ends, drop the halt it was parked for, release.
            self.halted = False
            self._algorithm = False
            self._caught = None
            board, parked = self.chip.board, self.chip.board.devices.get(DEVICE)
            board.hold("debug")
            if parked is not None:
                parked.debug_resume()
            board.release("debug", cause=self._cause)
            return
        algo, name = entry
        self.regs[0] = self._run_algorithm(algo, name)
        self.regs[REG_PC] = self.regs.get(REG_LR, 0) & ~1
        self.dfsr |= DFSR_BKPT

    def _algorithm_entry(self, pc: int) -> tuple[dict, str] | None:
        for algo, code in self._algos:
            for name in ("pc_init", "pc_unInit", "pc_program_page", "pc_erase_sector", "pc_eraseAll"):
                if algo.get(name) is not None and (algo[name] | 1) == (pc | 1):
                    if self.chip.read_block(algo["load_address"], len(code)) == code:
                        return algo, name
        return None

    def _run_algorithm(self, algo: dict, name: str) -> int:
        """Perform one flash algorithm function; 0 on success, 1 on failure (the FLM convention)."""
        flash, g = self.chip.flash, self.chip.geometry
        r0, r1, r2 = (self.regs.get(i, 0) for i in range(3))
        try:
            if name == "pc_erase_sector":
                self.chip.check_flash_access()
                flash.erase(r0 - g.base, g.sector_size)
            elif name == "pc_program_page":
                self.chip.check_flash_access()
                flash.write(r0 - g.base, self.chip.read_block(r2, r1))
            elif name == "pc_eraseAll":
                self.chip.check_flash_access()
                flash.erase(algo["flash_start"] - g.base, algo["flash_size"])
        except FlashError as err:
            self.chip.log_flash_error(err)
            return 1
        return 0
