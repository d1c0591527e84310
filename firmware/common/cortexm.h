/* The few Cortex-M core registers the app uses (ARMv6-M and ARMv7-M share these addresses). */
#ifndef RIG_CORTEXM_H
#define RIG_CORTEXM_H

#include <stdint.h>

#define REG32(addr) (*(volatile uint32_t *)(addr))

#define SYST_CSR   REG32(0xE000E010u)
#define SYST_RVR   REG32(0xE000E014u)
#define SYST_CVR   REG32(0xE000E018u)
#define SYST_CSR_ENABLE    (1u << 0)
#define SYST_CSR_TICKINT   (1u << 1)
#define SYST_CSR_CLKSOURCE (1u << 2) /* processor clock */

#define NVIC_ISER(n) REG32(0xE000E100u + 4u * (n))

#define SCB_VTOR   REG32(0xE000ED08u)
#define SCB_AIRCR  REG32(0xE000ED0Cu)
#define SCB_AIRCR_SYSRESETREQ (0x05FA0000u | (1u << 2)) /* VECTKEY + request */

static inline void dsb(void) { __asm volatile("dsb 0xF" ::: "memory"); }
static inline void isb(void) { __asm volatile("isb 0xF" ::: "memory"); }
static inline void irq_disable(void) { __asm volatile("cpsid i" ::: "memory"); }
static inline void irq_enable(void) { __asm volatile("cpsie i" ::: "memory"); }
static inline void wfi(void) { __asm volatile("wfi" ::: "memory"); }
static inline void nvic_enable(unsigned irq) { NVIC_ISER(irq / 32u) = 1u << (irq % 32u); }

/* A software reset: the RCC then reports SFTRST, which the next boot line shows as `software`. */
__attribute__((noreturn)) static inline void system_reset(void)
{
    dsb();
    SCB_AIRCR = SCB_AIRCR_SYSRESETREQ;
    dsb();
    for (;;) {
    }
}

#endif
