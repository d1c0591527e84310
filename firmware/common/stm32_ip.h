/* Register layouts of the ST peripheral blocks both parts share: the USART (the block with
 * ISR/TDR) and the independent watchdog. Each chip.h holds the base addresses: USART macros take
 * the base as an argument; chip.h defines IWDG_BASE before it includes this file. */
#ifndef RIG_STM32_IP_H
#define RIG_STM32_IP_H

#include "cortexm.h"

#define USART_CR1(b) REG32((b) + 0x00u)
#define USART_CR3(b) REG32((b) + 0x08u)
#define USART_BRR(b) REG32((b) + 0x0Cu)
#define USART_ISR(b) REG32((b) + 0x1Cu)
#define USART_ICR(b) REG32((b) + 0x20u)
#define USART_RDR(b) REG32((b) + 0x24u)
#define USART_TDR(b) REG32((b) + 0x28u)
#define USART_CR1_UE (1u << 0)
#define USART_CR1_RE (1u << 2)
#define USART_CR1_TE (1u << 3)
#define USART_CR1_IDLEIE (1u << 4)
#define USART_CR3_DMAR (1u << 6)
#define USART_ISR_TC (1u << 6)
#define USART_ISR_TXE (1u << 7)
#define USART_ICR_ORECF (1u << 3)
#define USART_ICR_IDLECF (1u << 4)

#define IWDG_KR REG32(IWDG_BASE + 0x00u)
#define IWDG_PR REG32(IWDG_BASE + 0x04u)
#define IWDG_RLR REG32(IWDG_BASE + 0x08u)
#define IWDG_SR REG32(IWDG_BASE + 0x0Cu)

#endif
