"""The virtual STM32H743 and STM32L073: debug port (SWD through pyocd) and the MCUboot model.

- swd.SwdServer(board, host): one TCP port per board speaking pyocd's remote-probe protocol;
  probe.py is the pyocd plugin that finds those ports in the lab registry.
- dap.py / chip.py / core.py / flashctl.py: the chip as a debugger sees it (see core.py for why
  the flash algorithm's contract is performed rather than its Thumb code executed).
- pyocd_target.py: the `stm32l073xx` target type the virtual L0 presents, and why.
- mcuboot.py: MCUboot swap-using-move, the bootloader the boards boot through.
"""
