"""The Cortex-M7 / Cortex-M0+ core: unicorn executes the Thumb code; exceptions are done here.

unicorn (QEMU's ARM front end in M-profile mode) has no NVIC: it executes instructions and
reports what would enter an exception (UDF, SVC, BKPT, faults) and an exception return (a branch
to an EXC_RETURN value in handler mode). This module performs the architecture's exception entry
and return around that (ARMv7-M ARM B1.5.6-B1.5.8, ARMv6-M ARM B1.5.6-B1.5.8): the eight-word
frame on the main stack, 8-byte alignment (xPSR bit 9), LR = EXC_RETURN, IPSR = the exception
number, PC from the vector table VTOR points at. Faults (an undefined instruction, a bus error on
an unmapped address) escalate to HardFault, as they do when the configurable faults are disabled
(the reset state); a fault inside the HardFault handler locks the core up, as on silicon: it
executes nothing more until a reset (the watchdog's, if it runs).

Not modelled: the process stack (CONTROL.SPSEL; bare-metal firmware stays on the main stack),
floating-point context stacking (the reference firmware's handlers use no FP registers), and
priorities (machine.py takes exceptions from thread mode only).
"""

import ctypes
import struct
from typing import Any

from unicorn import UC_ARCH_ARM, UC_HOOK_INTR, UC_MODE_MCLASS, UC_MODE_THUMB, Uc, UcError
from unicorn import arm_const as a
from unicorn.unicorn_py3.unicorn import uclib

MODELS = {"cortex-m7": a.UC_CPU_ARM_CORTEX_M7, "cortex-m0plus": a.UC_CPU_ARM_CORTEX_M0}
# QEMU's exception numbers, as unicorn's interrupt hook reports them
EXCP_SWI, EXCP_EXCEPTION_EXIT = 2, 8
HARDFAULT, SVCALL = 3, 11
FRAME = (a.UC_ARM_REG_R0, a.UC_ARM_REG_R1, a.UC_ARM_REG_R2, a.UC_ARM_REG_R3, a.UC_ARM_REG_R12, a.UC_ARM_REG_LR)
EXC_RETURN_THREAD, EXC_RETURN_HANDLER = 0xFFFF_FFF9, 0xFFFF_FFF1
XPSR_THUMB, XPSR_ALIGNED = 1 << 24, 1 << 9
WFI, WFE = 0xBF30, 0xBF20
CPSIE_I = 0xB662


class Cpu:
    def __init__(self, model: str, vtor):
        """`vtor()` gives the vector table address the SCB's VTOR holds."""
        # Any: the type information unicorn ships describes its Python 2 binding.
        self.uc: Any = Uc(UC_ARCH_ARM, UC_MODE_THUMB | UC_MODE_MCLASS)
        self.uc.ctl_set_cpu_model(MODELS[model])
        self._uch = self.uc._uch
        self._value = ctypes.c_uint64()
        self._value_ref = ctypes.byref(self._value)
        self._vtor = vtor
        self.exception_due = lambda: True  # whether an exception waits to be taken (the machine's NVIC)
        self.returned = lambda: None  # told after each exception return
        self.pc = 0  # where execution continues
        self.lockup = False
        self.sleeping = False  # stopped in WFI/WFE: waiting for an exception
        self._stopped = False  # a callback stopped the running slice
        self.uc.hook_add(UC_HOOK_INTR, self._on_intr)

    # -- reset and registers
    def reset(self, vector_table: int) -> None:
        """Leave reset with the MSP and PC of the vector table at `vector_table`."""
        sp, pc = struct.unpack("<II", self.uc.mem_read(vector_table, 8))
        self.write_regs([(a.UC_ARM_REG_XPSR, XPSR_THUMB), (a.UC_ARM_REG_PRIMASK, 0), (a.UC_ARM_REG_CONTROL, 0),
                          (a.UC_ARM_REG_MSP, sp), (a.UC_ARM_REG_SP, sp), (a.UC_ARM_REG_LR, 0xFFFF_FFFF)])
        self.pc = pc & ~1
        self.lockup = self.sleeping = False

    # Registers go straight through unicorn's C API: the binding's generic register calls cost
    # several microseconds each, and an exception entry and return need about twenty of them.
    def reg(self, reg: int) -> int:
        uclib.uc_reg_read(self._uch, reg, self._value_ref)
        return self._value.value & 0xFFFF_FFFF

    def read_regs(self, regs: list[int]) -> list[int]:
        return [self.reg(r) for r in regs]

    def write_regs(self, pairs: list[tuple[int, int]]) -> None:
        for reg, value in pairs:
            self._value.value = value
            uclib.uc_reg_write(self._uch, reg, self._value_ref)

    def can_take_exception(self) -> bool:
        return not self.lockup and self.reg(a.UC_ARM_REG_IPSR) == 0 and not self.reg(a.UC_ARM_REG_PRIMASK) & 1

    # -- running
    def request_stop(self) -> None:
        """Stop the running core after this instruction; only from the thread that runs it (a
        callback of its own)."""
        self._stopped = True
        self.uc.emu_stop()


    def run(self, count: int) -> bool:
        """Execute from `pc` until a stop request, a WFI/WFE, lockup, or `count` instructions;
        True if it executed all `count` of them."""
        if self.lockup:
            return False
        self._stopped = False
        try:
            self.uc.emu_start(self.pc | 1, 0xFFFF_FFFF, count=count)
            self.pc = self.reg(a.UC_ARM_REG_PC)
        except UcError:
            # A bus error (unmapped address, a store unicorn refused): escalate to HardFault with
            # the faulting instruction's address as the return address.
            self.pc = self.reg(a.UC_ARM_REG_PC)
            self._fault()
            return False
        if self._stopped:
            return False
        before = struct.unpack("<H", self.uc.mem_read((self.pc - 2) & ~1, 2))[0]
        self.sleeping = before in (WFI, WFE)  # else the count ran out
        return not self.sleeping

    def step_out_of_primask(self, limit: int = 16) -> None:
        """Execute single instructions until PRIMASK clears (a short critical section ends)."""
        for _ in range(limit):
            ipsr, primask = self.read_regs([a.UC_ARM_REG_IPSR, a.UC_ARM_REG_PRIMASK])
            if self.lockup or ipsr or not primask & 1:
                return
            if struct.unpack("<H", self.uc.mem_read(self.pc, 2))[0] == CPSIE_I:
                # The idle loop's `cpsie i` right after its WFI: done here, without a round through
                # unicorn for one instruction (it is all the instruction does).
                self.write_regs([(a.UC_ARM_REG_PRIMASK, 0)])
                self.pc += 2
                continue
            self._stopped = False
            try:
                self.uc.emu_start(self.pc | 1, 0xFFFF_FFFF, count=1)
                self.pc = self.reg(a.UC_ARM_REG_PC)
            except UcError:
                self.pc = self.reg(a.UC_ARM_REG_PC)
                self._fault()

    def take(self, number: int) -> None:
        """Exception entry, from thread or handler mode, returning to `pc`."""
        self._enter(number, self.pc)
        self.sleeping = False

    def _enter(self, number: int, return_pc: int) -> None:
        uc = self.uc
        *saved, sp, xpsr, ipsr = self.read_regs([*FRAME, a.UC_ARM_REG_SP, a.UC_ARM_REG_XPSR, a.UC_ARM_REG_IPSR])
        frame = (sp - 32) & ~7
        stacked_xpsr = (xpsr & ~XPSR_ALIGNED) | (XPSR_ALIGNED if (sp - 32) & 4 else 0)
        try:
            uc.mem_write(frame, struct.pack("<8I", *saved, return_pc & ~1, stacked_xpsr))
            handler = struct.unpack("<I", uc.mem_read(self._vtor() + 4 * number, 4))[0]
        except UcError:
            self.lockup = True  # the stack or the vector table is not there: nothing can run
            return
        self.write_regs([(a.UC_ARM_REG_SP, frame), (a.UC_ARM_REG_IPSR, number),
                          (a.UC_ARM_REG_LR, EXC_RETURN_HANDLER if ipsr else EXC_RETURN_THREAD)])
        self.pc = handler & ~1

    def _fault(self) -> None:
        if self.reg(a.UC_ARM_REG_IPSR) == HARDFAULT:
            self.lockup = True
        else:
            self._enter(HARDFAULT, self.pc)

    def _return(self) -> None:
        uc = self.uc
        sp = self.reg(a.UC_ARM_REG_SP)
        *saved, pc, xpsr = struct.unpack("<8I", uc.mem_read(sp, 32))
        sp += 32 + (4 if xpsr & XPSR_ALIGNED else 0)
        self.write_regs([*zip(FRAME, saved, strict=True), (a.UC_ARM_REG_SP, sp),
                          (a.UC_ARM_REG_XPSR, xpsr & ~XPSR_ALIGNED)])
        self.pc = pc & ~1

    def _on_intr(self, uc, intno: int, _user) -> None:
        # Runs inside emu_start: the new PC takes effect when the hook returns.
        if intno == EXCP_EXCEPTION_EXIT:
            self._return()
            self.returned()
            if self.exception_due():
                self._stopped = True  # let the machine take what became pending while the handler ran
                uc.emu_stop()
        else:
            self.pc = self.reg(a.UC_ARM_REG_PC)
            if intno == EXCP_SWI:
                self._enter(SVCALL, self.pc)
            else:  # UDF, BKPT without a debugger, an instruction the core lacks: HardFault
                self._fault()
            if self.lockup:
                self._stopped = True
                uc.emu_stop()
                return
        self.write_regs([(a.UC_ARM_REG_PC, self.pc | 1)])
