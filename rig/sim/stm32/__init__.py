"""The virtual STM32H743 and STM32L073: debug port (SWD through pyocd) and the MCUboot model.

- swd.SwdServer(board, host): one TCP port per board speaking pyocd's remote-probe protocol;
  probe.py is the pyocd plugin that finds those ports in the lab registry.
- machine.py (cpu.py, scs.py, rcc.py, usart.py, iwdg.py, flashctl.py, clock.py): the part executing
  firmware on an emulated Cortex-M7 / M0+ (unicorn) with its peripherals at register level.
- dap.py / chip.py / core.py / flashctl.py: the chip as a debugger sees it (see core.py for why
  the flash algorithm's contract is performed rather than its Thumb code executed).
- pyocd_target.py: the `stm32l073xx` target type the virtual L0 presents, and why.
- mcuboot.py: MCUboot swap-using-move, the bootloader the boards boot through.
"""
