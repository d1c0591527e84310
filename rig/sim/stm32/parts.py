"""What each virtual STM32 is: what it says about itself to a debugger (ID registers, RAM, debug
components) and where the peripherals its emulated core drives sit on the bus.

Values are those of the silicon (reference manuals RM0433 for the STM32H743, RM0367/RM0377 for
the STM32L0, ARMv7-M / ARMv6-M ARM for the core), so pyocd's discovery walks the same path it
walks on a Nucleo board, and the firmware finds its registers where chip.h puts them on the part.
What the drivers and the build need too (the core, the ID and FLASH addresses) is the part's
rig.chips.stm32 record; flash geometry comes from rig.image.layouts.
"""

from dataclasses import dataclass
from enum import Enum

from rig.chips import stm32 as chips


class FlashInterface(Enum):
    """How the part's FLASH peripheral is driven: rig.sim.stm32.flashctl models each one."""

    H7 = "RM0433 §4: KEYR/CR per bank, 256-bit flash words, sector and bank erase, OPTCR option bytes"
    L0 = "RM0367 §3: PEKEYR/PRGKEYR unlock, word programming, page erase, option bytes at 0x1FF80000"


class RccInterface(Enum):
    """Which RCC the part has: rig.sim.stm32.rcc models each one's reset flags and core clock."""

    H7 = "RM0433 §8: reset flags in RCC_RSR, core clock from HSI (64 MHz / CR.HSIDIV)"
    L0 = "RM0367 §7: reset flags in RCC_CSR, core clock from MSI (2.097 MHz) or HSI16 (/4) by CFGR.SW"


@dataclass(frozen=True)
class Part:
    variant: str
    chip: chips.Chip  # the silicon facts the drivers and the build read too
    target_type: str  # the pyocd target type a user passes with -t
    dpidr: int  # SW-DP IDR
    ap_idr: int  # AP0: the AHB-AP that reaches the core and the bus
    cpuid: int  # SCB CPUID
    scs_part: int  # CoreSight part numbers in the core's ROM table (ARM, generic IP class)
    dwt_part: int
    fpb_part: int
    dwt_comparators: int
    fpb_comparators: int
    fpb_rev: int  # FP_CTRL.REV: 1 on the Cortex-M7 (breakpoints anywhere), 0 on v6-M
    dbgmcu_idcode: int  # what DBGMCU_IDCODE (chip.idcode) reads: the revision's REV_ID, chip.dev_id
    ram: tuple[tuple[int, int], ...]  # (bus address, size) of each RAM block
    flash_interface: FlashInterface  # what the FLASH peripheral's registers (chip.flash) are
    # -- what the emulated core needs (rig.sim.stm32.machine)
    rcc: int  # bus address of the RCC
    rcc_interface: RccInterface  # and which one it is
    console_usart: int  # the USART wired to the ST-LINK virtual COM port on the Nucleo board
    console_irq: int  # its NVIC interrupt number
    iwdg: int  # bus address of the independent watchdog (IWDG1 on the H7)
    lsi_hz: int  # the LSI oscillator that clocks the IWDG (typical)
    gpio: tuple[int, int]  # (bus address, size) of the GPIO ports: plain registers here
    dma: int  # bus address of DMA1
    dmamux: int | None  # bus address of DMAMUX1 (the H7's request router), None: CSELR routes (the L0)
    dma_irqs: tuple[int, ...]  # NVIC line of each DMA1 channel (L0: 1-7) or stream (H7: 0-7)
    console_rx_requests: tuple  # what routes the console USART's RX request to a channel: rig.sim.stm32.dma
    dma_ram: tuple[tuple[int, int], ...]  # the RAM blocks DMA1 reaches


STM32H743 = Part(
    variant="stm32h7",
    chip=chips.STM32H743,
    target_type="stm32h743xx",
    dpidr=0x6BA02477,  # SW-DP v2, ARM
    ap_idr=0x84770001,  # AHB-AP (AHB3)
    cpuid=0x411FC271,  # Cortex-M7 r1p1
    scs_part=0x00C,
    dwt_part=0x002,
    fpb_part=0x00E,  # the Cortex-M7's FPB (FPBv1 with remap removed)
    dwt_comparators=4,
    fpb_comparators=8,
    fpb_rev=1,
    dbgmcu_idcode=0x1003_6000 | chips.STM32H743.dev_id,  # REV_ID 0x1003 (revision V), reserved 15:12, DEV_ID
    ram=(
        (0x0000_0000, 64 * 1024),  # ITCM
        (0x2000_0000, 128 * 1024),  # DTCM (pyocd's flash algorithm runs here)
        (0x2400_0000, 512 * 1024),  # AXI SRAM
        (0x3000_0000, 288 * 1024),  # SRAM1..3
        (0x3800_0000, 64 * 1024),  # SRAM4
    ),
    flash_interface=FlashInterface.H7,
    rcc=0x5802_4400,
    rcc_interface=RccInterface.H7,
    console_usart=0x4000_4800,  # USART3 on PD8/PD9
    console_irq=39,
    iwdg=0x5800_4800,
    lsi_hz=32_000,
    gpio=(0x5802_0000, 0x2C00),  # GPIOA..GPIOK, 1 KiB each
    dma=0x4002_0000,
    dmamux=0x4002_0800,
    dma_irqs=(11, 12, 13, 14, 15, 16, 17, 47),  # DMA1_Stream0..7
    console_rx_requests=(45,),  # DMAMUX1 input usart3_rx_dma (RM0433 Table 121)
    # DMA1 sits in D2: AXI SRAM, SRAM1..3 and SRAM4, not the TCMs (RM0433 Table 3, bus matrix)
    dma_ram=((0x2400_0000, 512 * 1024), (0x3000_0000, 288 * 1024), (0x3800_0000, 64 * 1024)),
)

STM32L073 = Part(
    variant="stm32l0",
    chip=chips.STM32L073,
    target_type="stm32l073xx",
    dpidr=0x0BC11477,  # SW-DP v1 MINDP, as on every Cortex-M0+
    ap_idr=0x04770031,  # AHB-AP of the Cortex-M0+
    cpuid=0x410CC601,  # Cortex-M0+ r0p1
    scs_part=0x008,
    dwt_part=0x00A,
    fpb_part=0x00B,  # BPU
    dwt_comparators=2,
    fpb_comparators=4,
    fpb_rev=0,
    dbgmcu_idcode=0x1000_6000 | chips.STM32L073.dev_id,  # REV_ID 0x1000, reserved 15:12, DEV_ID
    ram=((0x2000_0000, 20 * 1024),),
    flash_interface=FlashInterface.L0,
    rcc=0x4002_1000,
    rcc_interface=RccInterface.L0,
    console_usart=0x4000_4400,  # USART2 on PA2/PA3
    console_irq=28,
    iwdg=0x4000_3000,
    lsi_hz=37_000,
    gpio=(0x5000_0000, 0x2000),  # IOPORT: GPIOA..GPIOH
    dma=0x4002_0000,
    dmamux=None,
    dma_irqs=(9, 10, 10, 11, 11, 11, 11),  # DMA1_Channel1, DMA1_Channel2_3, DMA1_Channel4_5_6_7
    console_rx_requests=((5, 4), (6, 4)),  # (channel, CSELR CxS): USART2_RX on channel 5 or 6 (RM0367 Table 51)
    dma_ram=((0x2000_0000, 20 * 1024),),
)

PARTS = {p.variant: p for p in (STM32H743, STM32L073)}
