/* STM32H743 board support: USART3 console, reset flags, 256-bit flash word programming. */
#include <string.h>

#include "board.h"
#include "chip.h"
#include "rig_layout.h"

_Static_assert(RIG_WRITE_SIZE == 32, "the STM32H7 programs 256-bit flash words");

void board_init(void)
{
    RCC_AHB4ENR |= RCC_AHB4ENR_GPIODEN;
    RCC_APB1LENR |= RCC_APB1LENR_USART3EN;
    (void)RCC_APB1LENR; /* read back: the clock is on before the first register access */
    GPIOD_MODER = (GPIOD_MODER & ~(0xFu << 16)) | (0xAu << 16);      /* PD8, PD9: alternate */
    GPIOD_AFRH = (GPIOD_AFRH & ~0xFFu) | 0x77u;                       /* AF7 = USART3 */
    USART_BRR(USART3_BASE) = (CHIP_PCLK1_HZ + 115200u / 2u) / 115200u;
    USART_CR1(USART3_BASE) = USART_CR1_UE | USART_CR1_TE;

    SYST_RVR = CHIP_CORE_HZ / 1000u * RIG_TICK_MS - 1u;
    SYST_CVR = 0;
    SYST_CSR = SYST_CSR_CLKSOURCE | SYST_CSR_TICKINT | SYST_CSR_ENABLE;
}

void board_putc(char c)
{
    while (!(USART_ISR(USART3_BASE) & USART_ISR_TXE)) {
    }
    USART_TDR(USART3_BASE) = (uint8_t)c;
}

void board_console_drain(void)
{
    while (!(USART_ISR(USART3_BASE) & USART_ISR_TC)) {
    }
}

void board_console_rx_start(volatile uint8_t *ring, uint32_t size)
{
    RCC_AHB1ENR |= RCC_AHB1ENR_DMA1EN;
    (void)RCC_AHB1ENR;
    DMAMUX1_C0CR = DMAMUX_REQ_USART3_RX;
    DMA1_S0PAR = (uint32_t)&USART_RDR(USART3_BASE);
    DMA1_S0M0AR = (uint32_t)ring;
    DMA1_S0NDTR = size;
    DMA1_S0CR = DMA_SCR_MINC | DMA_SCR_CIRC | DMA_SCR_HTIE | DMA_SCR_TCIE | DMA_SCR_EN; /* 8-bit, to memory */
    USART_CR3(USART3_BASE) |= USART_CR3_DMAR;
    USART_CR1(USART3_BASE) |= USART_CR1_RE | USART_CR1_IDLEIE;
    nvic_enable(CHIP_CONSOLE_DMA_IRQ);
    nvic_enable(CHIP_CONSOLE_IRQ);
}

uint32_t board_console_rx_left(void)
{
    return DMA1_S0NDTR;
}

/* Both interrupts only wake the main loop (console_idle's WFI): it reads what the DMA wrote. */
void Console_IRQHandler(void)
{
    USART_ICR(USART3_BASE) = USART_ICR_IDLECF | USART_ICR_ORECF; /* ORE: a byte lost, SMP's CRC notices */
}

void Console_DMA_IRQHandler(void)
{
    DMA1_LIFCR = DMA_LIFCR_STREAM0;
}

enum reset_cause board_reset_cause(void)
{
    uint32_t rsr = RCC_RSR;
    RCC_RSR |= RCC_RSR_RMVF;
    /* Every reset pulses NRST, so PINRSTF accompanies the others: test it last. A power-on also
     * sets BORRSTF, so POR comes before brownout. */
    if (rsr & RCC_RSR_PORRSTF) {
        return RESET_POWER_ON;
    }
    if (rsr & RCC_RSR_IWDG1RSTF) {
        return RESET_WATCHDOG;
    }
    if (rsr & RCC_RSR_SFTRSTF) {
        return RESET_SOFTWARE;
    }
    if (rsr & RCC_RSR_BORRSTF) {
        return RESET_BROWNOUT;
    }
    return RESET_PIN; /* PINRSTF alone, or flags a previous stage already cleared */
}

static void flash_unlock(uint32_t bank)
{
    if (FLASH_CR(bank) & FLASH_CR_LOCK) {
        FLASH_KEYR(bank) = FLASH_KEY1;
        FLASH_KEYR(bank) = FLASH_KEY2;
    }
    FLASH_CCR(bank) = FLASH_SR_ERRORS | (1u << 16); /* stale errors and EOP */
}

/* RM0433 4.3.10 sector erase: SER and the sector number within the bank, then START. */
uint32_t board_flash_erase(uint32_t address)
{
    uint32_t bank = address >= FLASH_BANK2_START;
    uint32_t sector = (address - (bank ? FLASH_BANK2_START : FLASH_BANK1_START)) / RIG_SECTOR_SIZE;
    flash_unlock(bank);
    FLASH_CR(bank) = FLASH_CR_PSIZE_X32 | FLASH_CR_SER | (sector << FLASH_CR_SNB_SHIFT);
    FLASH_CR(bank) |= FLASH_CR_START;
    dsb();
    while (FLASH_SR(bank) & (FLASH_SR_QW | FLASH_SR_BSY)) {
        board_watchdog_feed(); /* a 128 KiB sector takes up to seconds (RM0433 tSE), the IWDG 2 s */
    }
    uint32_t errors = FLASH_SR(bank) & FLASH_SR_ERRORS;
    FLASH_CR(bank) &= ~(FLASH_CR_SER | (7u << FLASH_CR_SNB_SHIFT));
    FLASH_CR(bank) |= FLASH_CR_LOCK;
    return errors;
}

uint32_t board_flash_program(uint32_t address, const uint8_t *unit)
{
    uint32_t bank = address >= FLASH_BANK2_START;
    uint32_t words[RIG_WRITE_SIZE / 4];
    memcpy(words, unit, sizeof words);

    flash_unlock(bank);
    FLASH_CR(bank) = FLASH_CR_PG | FLASH_CR_PSIZE_X32;
    volatile uint32_t *dst = (volatile uint32_t *)address;
    for (unsigned i = 0; i < RIG_WRITE_SIZE / 4; i++) {
        dst[i] = words[i]; /* the eighth word fills the write buffer and starts programming */
    }
    dsb();
    while (FLASH_SR(bank) & (FLASH_SR_QW | FLASH_SR_BSY)) {
    }
    uint32_t errors = FLASH_SR(bank) & FLASH_SR_ERRORS;
    FLASH_CR(bank) &= ~FLASH_CR_PG;
    FLASH_CR(bank) |= FLASH_CR_LOCK;
    return errors;
}
