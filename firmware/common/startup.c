/* Vector table and reset handler for Cortex-M0+ and Cortex-M7 (the IRQ count comes from chip.h).
 *
 * MCUboot jumps here with the MSP loaded from our vector table, but it does not always point
 * VTOR at us: the reset handler does that first, so our SysTick and HardFault handlers run. */
#include <stdint.h>

#include "chip.h"
#include "cortexm.h"

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
int main(void);

void Reset_Handler(void);
void Default_Handler(void);
void HardFault_Handler(void);
void NMI_Handler(void) __attribute__((weak, alias("Default_Handler")));
void MemManage_Handler(void) __attribute__((weak, alias("Default_Handler")));
void BusFault_Handler(void) __attribute__((weak, alias("Default_Handler")));
void UsageFault_Handler(void) __attribute__((weak, alias("Default_Handler")));
void SVC_Handler(void) __attribute__((weak, alias("Default_Handler")));
void DebugMon_Handler(void) __attribute__((weak, alias("Default_Handler")));
void PendSV_Handler(void) __attribute__((weak, alias("Default_Handler")));
void SysTick_Handler(void) __attribute__((weak, alias("Default_Handler")));
void Console_IRQHandler(void); /* the console USART's interrupt, in board.c */
void Console_DMA_IRQHandler(void); /* the interrupt of its RX DMA channel, in board.c */

typedef void (*vector_t)(void);
_Static_assert(CHIP_CONSOLE_DMA_IRQ < CHIP_CONSOLE_IRQ, "the vector table below lists them in this order");

/* 16 core entries then every peripheral IRQ of the part, so the table has the part's real size
 * (0x298 bytes on the STM32H743, 0xC0 on the STM32L073) and rig/image/appdesc.py's offset holds.
 * On the M0+ the MemManage..DebugMon slots are reserved; pointing them at handlers is harmless. */
__attribute__((section(".isr_vector"), used)) const vector_t vectors[16 + CHIP_IRQ_COUNT] = {
    [0] = (vector_t)&_estack,
    [1] = Reset_Handler,
    [2] = NMI_Handler,
    [3] = HardFault_Handler,
    [4] = MemManage_Handler,
    [5] = BusFault_Handler,
    [6] = UsageFault_Handler,
    [11] = SVC_Handler,
    [12] = DebugMon_Handler,
    [14] = PendSV_Handler,
    [15] = SysTick_Handler,
    [16 ... 16 + CHIP_CONSOLE_DMA_IRQ - 1] = Default_Handler,
    [16 + CHIP_CONSOLE_DMA_IRQ] = Console_DMA_IRQHandler,
    [16 + CHIP_CONSOLE_DMA_IRQ + 1 ... 16 + CHIP_CONSOLE_IRQ - 1] = Default_Handler,
    [16 + CHIP_CONSOLE_IRQ] = Console_IRQHandler,
    [16 + CHIP_CONSOLE_IRQ + 1 ... 16 + CHIP_IRQ_COUNT - 1] = Default_Handler,
};

void Reset_Handler(void)
{
    SCB_VTOR = (uint32_t)vectors;
    dsb();
    isb();
    uint32_t *src = &_sidata;
    for (uint32_t *dst = &_sdata; dst < &_edata;) {
        *dst++ = *src++;
    }
    for (uint32_t *dst = &_sbss; dst < &_ebss;) {
        *dst++ = 0;
    }
    __asm volatile("cpsie i" ::: "memory"); /* a bootloader may jump here with IRQs masked */
    main();
    for (;;) {
    }
}

/* An interrupt nothing enabled: stop here without feeding, and the watchdog resets the part. */
void Default_Handler(void)
{
    for (;;) {
    }
}
