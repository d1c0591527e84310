"""What a virtual STM32 runs after MCUboot's model: the booted image's own machine code, on the
emulated core (machine.py), from slot0's vector table - as MCUboot's `do_boot` jumps there.

The machine is the part: it lives across resets, so RAM (the firmware's .noinit boot counter)
survives a reset and is lost only at power-on, when a new one starts with RAM noise. Its console
USART is the board's console (RFC2217 and pty alike); its flash controller works on the board's
Flash, so a power cut armed at flash operation N lands in the firmware's own erases and
programs. A reset the firmware makes (AIRCR, the IWDG) resets the board, which runs MCUboot's
model again; power, reset lines and a debugger's hold stop the core where it is.
"""

from rig.sim.board import BoardContext, BootedImage
from rig.sim.stm32 import flashctl
from rig.sim.stm32.clock import WallClock
from rig.sim.stm32.machine import Machine
from rig.sim.stm32.parts import PARTS

DEVICE = "stm32-machine"  # the board's devices entry holding the machine


def run(ctx: BoardContext, booted: BootedImage) -> None:
    machine = _machine(ctx)
    machine.transmit_to(ctx.write)
    machine.reset(ctx.reset_cause, ctx.layout.geometry.base + booted.offset + booted.header_size)
    ctx.attach(machine.receive, machine.interrupt)
    cause = machine.run(stop=lambda: not ctx.powered())
    if cause is not None:
        ctx.reset(cause)


def _machine(ctx: BoardContext) -> Machine:
    machine = ctx.devices.get(DEVICE)
    if machine is not None and ctx.reset_cause != "power-on":
        return machine
    if machine is not None:
        machine.close()  # the power was off: RAM and peripherals start afresh
    part = PARTS[ctx.variant]
    options = flashctl.OptionBytes(ctx.state_dir / "option-bytes.json")
    holder: list[Machine] = []
    controller = flashctl.for_part(part, ctx.flash, options, lambda: holder[0].request_reset("software"))
    machine = Machine(part, ctx.flash, controller, lambda data: None, WallClock())
    holder.append(machine)
    ctx.devices[DEVICE] = machine
    return machine
