/* STM32L073 registers used by board.c (RM0367). Only what the app touches; addresses are the
 * part's real ones, so this binary runs on a NUCLEO-L073RZ. */
#ifndef RIG_CHIP_H
#define RIG_CHIP_H

#include "cortexm.h"

#define CHIP_IRQ_COUNT 32 /* 16 + 32 vectors = 0xC0 bytes */
#define CHIP_CONSOLE_IRQ 28 /* USART2 global interrupt */
#define CHIP_CONSOLE_DMA_IRQ 11 /* DMA1_Channel4_5_6_7 */
#define CHIP_DMA_RAM /* DMA1 reaches all of the SRAM */

/* board_init() switches SYSCLK from the 2.1 MHz MSI to HSI16 for an accurate 115200 baud. */
#define CHIP_CORE_HZ 16000000u
#define CHIP_PCLK1_HZ 16000000u
#define CHIP_LSI_HZ 37000u

/* RCC */
#define RCC_BASE 0x40021000u
#define RCC_CR REG32(RCC_BASE + 0x00u)
#define RCC_CFGR REG32(RCC_BASE + 0x0Cu)
#define RCC_IOPENR REG32(RCC_BASE + 0x2Cu)
#define RCC_APB1ENR REG32(RCC_BASE + 0x38u)
#define RCC_AHBENR REG32(RCC_BASE + 0x30u)
#define RCC_CSR REG32(RCC_BASE + 0x50u)
#define RCC_AHBENR_DMAEN (1u << 0)
#define RCC_CR_HSI16ON (1u << 0)
#define RCC_CR_HSI16RDYF (1u << 2)
#define RCC_CFGR_SW_MASK (3u << 0)
#define RCC_CFGR_SW_HSI16 (1u << 0)
#define RCC_CFGR_SWS_MASK (3u << 2)
#define RCC_CFGR_SWS_HSI16 (1u << 2)
#define RCC_IOPENR_GPIOAEN (1u << 0)
#define RCC_APB1ENR_USART2EN (1u << 17)
#define RCC_CSR_RMVF (1u << 23)
#define RCC_CSR_PINRSTF (1u << 26)
#define RCC_CSR_PORRSTF (1u << 27) /* POR/PDR; the L0 has no separate brownout flag */
#define RCC_CSR_SFTRSTF (1u << 28)
#define RCC_CSR_IWDGRSTF (1u << 29)

/* GPIOA: PA2 = USART2_TX, PA3 = USART2_RX (AF4), the ST-LINK virtual COM port on the Nucleo */
#define GPIOA_BASE 0x50000000u
#define GPIOA_MODER REG32(GPIOA_BASE + 0x00u)
#define GPIOA_AFRL REG32(GPIOA_BASE + 0x20u)

/* USART2 (same USART block as the H7's) */
#define USART2_BASE 0x40004400u

/* DMA1 channel 5 with request 4 (CSELR C5S) = USART2_RX (RM0367 §11, Table 51) */
#define DMA1_BASE 0x40020000u
#define DMA1_IFCR REG32(DMA1_BASE + 0x04u)
#define DMA1_CCR5 REG32(DMA1_BASE + 0x58u)
#define DMA1_CNDTR5 REG32(DMA1_BASE + 0x5Cu)
#define DMA1_CPAR5 REG32(DMA1_BASE + 0x60u)
#define DMA1_CMAR5 REG32(DMA1_BASE + 0x64u)
#define DMA1_CSELR REG32(DMA1_BASE + 0xA8u)
#define DMA1_CSELR_C5S_USART2_RX (4u << 16)
#define DMA_CCR_EN (1u << 0)
#define DMA_CCR_TCIE (1u << 1)
#define DMA_CCR_HTIE (1u << 2)
#define DMA_CCR_CIRC (1u << 5)
#define DMA_CCR_MINC (1u << 7)
#define DMA_IFCR_CGIF5 (1u << 16) /* clears all of channel 5's flags */

/* IWDG */
#define IWDG_BASE 0x40003000u
#include "stm32_ip.h" /* USART and IWDG register layouts */

/* Flash program/erase controller (NVM) */
#define FLASH_BASE_REGS 0x40022000u
#define FLASH_ACR REG32(FLASH_BASE_REGS + 0x00u)
#define FLASH_PECR REG32(FLASH_BASE_REGS + 0x04u)
#define FLASH_PEKEYR REG32(FLASH_BASE_REGS + 0x0Cu)
#define FLASH_PRGKEYR REG32(FLASH_BASE_REGS + 0x10u)
#define FLASH_SR REG32(FLASH_BASE_REGS + 0x18u)
#define FLASH_ACR_LATENCY (1u << 0)
#define FLASH_PECR_PELOCK (1u << 0)
#define FLASH_PECR_PRGLOCK (1u << 1)
#define FLASH_PECR_PROG (1u << 3)
#define FLASH_PECR_ERASE (1u << 9)
#define FLASH_PEKEY1 0x89ABCDEFu
#define FLASH_PEKEY2 0x02030405u
#define FLASH_PRGKEY1 0x8C9DAEBFu
#define FLASH_PRGKEY2 0x13141516u
#define FLASH_SR_BSY (1u << 0)
#define FLASH_SR_EOP (1u << 1)
/* WRPERR PGAERR SIZERR OPTVERR RDERR NOTZEROERR FWWERR */
#define FLASH_SR_ERRORS (0x00032F00u)

#endif
