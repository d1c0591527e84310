/* STM32H743 registers used by board.c (RM0433). Only what the app touches; addresses are the
 * part's real ones, so this binary runs on a NUCLEO-H743ZI. */
#ifndef RIG_CHIP_H
#define RIG_CHIP_H

#include "cortexm.h"

#define CHIP_IRQ_COUNT 150 /* 16 + 150 vectors = 0x298 bytes */
#define CHIP_CONSOLE_IRQ 39 /* USART3 global interrupt */
#define CHIP_CONSOLE_DMA_IRQ 11 /* DMA1_Stream0 */
/* DMA1 cannot reach the TCMs (RM0433 Table 3): its buffers go to AXI SRAM (link.ld). */
#define CHIP_DMA_RAM __attribute__((section(".dma_ram")))

/* Reset values: HSI 64 MHz drives SYSCLK, all prescalers /1, so PCLK1 = 64 MHz. */
#define CHIP_CORE_HZ 64000000u
#define CHIP_PCLK1_HZ 64000000u
#define CHIP_LSI_HZ 32000u

/* RCC (D3 domain, AHB4) */
#define RCC_BASE 0x58024400u
#define RCC_RSR REG32(RCC_BASE + 0x0D0u)
#define RCC_AHB1ENR REG32(RCC_BASE + 0x0D8u)
#define RCC_AHB4ENR REG32(RCC_BASE + 0x0E0u)
#define RCC_AHB1ENR_DMA1EN (1u << 0)
#define RCC_APB1LENR REG32(RCC_BASE + 0x0E8u)
#define RCC_AHB4ENR_GPIODEN (1u << 3)
#define RCC_APB1LENR_USART3EN (1u << 18)
#define RCC_RSR_RMVF (1u << 16)
#define RCC_RSR_BORRSTF (1u << 21)
#define RCC_RSR_PINRSTF (1u << 22)
#define RCC_RSR_PORRSTF (1u << 23)
#define RCC_RSR_SFTRSTF (1u << 24)
#define RCC_RSR_IWDG1RSTF (1u << 26)

/* GPIOD: PD8 = USART3_TX, PD9 = USART3_RX (AF7), the ST-LINK virtual COM port on the Nucleo */
#define GPIOD_BASE 0x58020C00u
#define GPIOD_MODER REG32(GPIOD_BASE + 0x00u)
#define GPIOD_AFRH REG32(GPIOD_BASE + 0x24u)

/* USART3 */
#define USART3_BASE 0x40004800u

/* DMA1 stream 0, fed by DMAMUX1 channel 0 with request 45 = usart3_rx_dma (RM0433 §15, §17, Table 121) */
#define DMA1_BASE 0x40020000u
#define DMA1_LIFCR REG32(DMA1_BASE + 0x08u)
#define DMA1_S0CR REG32(DMA1_BASE + 0x10u)
#define DMA1_S0NDTR REG32(DMA1_BASE + 0x14u)
#define DMA1_S0PAR REG32(DMA1_BASE + 0x18u)
#define DMA1_S0M0AR REG32(DMA1_BASE + 0x1Cu)
#define DMAMUX1_C0CR REG32(0x40020800u)
#define DMAMUX_REQ_USART3_RX 45u
#define DMA_SCR_EN (1u << 0)
#define DMA_SCR_HTIE (1u << 3)
#define DMA_SCR_TCIE (1u << 4)
#define DMA_SCR_CIRC (1u << 8)
#define DMA_SCR_MINC (1u << 10)
#define DMA_LIFCR_STREAM0 0x3Du /* CFEIF0 CDMEIF0 CTEIF0 CHTIF0 CTCIF0 */

/* IWDG1 */
#define IWDG_BASE 0x58004800u
#include "stm32_ip.h" /* USART and IWDG register layouts */

/* Embedded flash: one register set per 1 MiB bank, bank 2 at +0x100 */
#define FLASH_BASE_REGS 0x52002000u
#define FLASH_BANK1_START 0x08000000u
#define FLASH_BANK2_START 0x08100000u
#define FLASH_KEYR(bank) REG32(FLASH_BASE_REGS + 0x04u + 0x100u * (bank))
#define FLASH_CR(bank) REG32(FLASH_BASE_REGS + 0x0Cu + 0x100u * (bank))
#define FLASH_SR(bank) REG32(FLASH_BASE_REGS + 0x10u + 0x100u * (bank))
#define FLASH_CCR(bank) REG32(FLASH_BASE_REGS + 0x14u + 0x100u * (bank))
#define FLASH_KEY1 0x45670123u
#define FLASH_KEY2 0xCDEF89ABu
#define FLASH_CR_LOCK (1u << 0)
#define FLASH_CR_PG (1u << 1)
#define FLASH_CR_SER (1u << 2)
#define FLASH_CR_START (1u << 7)
#define FLASH_CR_SNB_SHIFT 8u
#define FLASH_CR_PSIZE_X32 (2u << 4)
#define FLASH_SR_BSY (1u << 0)
#define FLASH_SR_QW (1u << 2)
/* WRPERR PGSERR STRBERR INCERR OPERR RDPERR RDSERR SNECCERR DBECCERR */
#define FLASH_SR_ERRORS (0x07EE0000u)

#endif
