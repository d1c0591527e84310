/* STM32L073 board support: HSI16 clock, USART2 console, reset flags, word programming. */
#include <string.h>

#include "board.h"
#include "chip.h"
#include "rig_layout.h"

_Static_assert(RIG_WRITE_SIZE == 4, "the STM32L0 programs 32-bit words");
_Static_assert(RIG_ERASED == 0x00, "STM32L0 flash erases to 0x00");

void board_init(void)
{
    /* 16 MHz in the reset voltage range 2 needs one flash wait state, set before the switch. */
    FLASH_ACR |= FLASH_ACR_LATENCY;
    RCC_CR |= RCC_CR_HSI16ON;
    while (!(RCC_CR & RCC_CR_HSI16RDYF)) {
    }
    RCC_CFGR = (RCC_CFGR & ~RCC_CFGR_SW_MASK) | RCC_CFGR_SW_HSI16;
    while ((RCC_CFGR & RCC_CFGR_SWS_MASK) != RCC_CFGR_SWS_HSI16) {
    }

    RCC_IOPENR |= RCC_IOPENR_GPIOAEN;
    RCC_APB1ENR |= RCC_APB1ENR_USART2EN;
    (void)RCC_APB1ENR;
    GPIOA_MODER = (GPIOA_MODER & ~(0xFu << 4)) | (0xAu << 4);  /* PA2, PA3: alternate */
    GPIOA_AFRL = (GPIOA_AFRL & ~(0xFFu << 8)) | (0x44u << 8);  /* AF4 = USART2 */
    USART_BRR(USART2_BASE) = (CHIP_PCLK1_HZ + 115200u / 2u) / 115200u;
    USART_CR1(USART2_BASE) = USART_CR1_UE | USART_CR1_TE;

    SYST_RVR = CHIP_CORE_HZ / 1000u * RIG_TICK_MS - 1u;
    SYST_CVR = 0;
    SYST_CSR = SYST_CSR_CLKSOURCE | SYST_CSR_TICKINT | SYST_CSR_ENABLE;
}

void board_putc(char c)
{
    while (!(USART_ISR(USART2_BASE) & USART_ISR_TXE)) {
    }
    USART_TDR(USART2_BASE) = (uint8_t)c;
}

void board_console_drain(void)
{
    while (!(USART_ISR(USART2_BASE) & USART_ISR_TC)) {
    }
}

void board_console_rx_start(volatile uint8_t *ring, uint32_t size)
{
    RCC_AHBENR |= RCC_AHBENR_DMAEN;
    (void)RCC_AHBENR;
    DMA1_CSELR = (DMA1_CSELR & ~(0xFu << 16)) | DMA1_CSELR_C5S_USART2_RX;
    DMA1_CPAR5 = (uint32_t)&USART_RDR(USART2_BASE);
    DMA1_CMAR5 = (uint32_t)ring;
    DMA1_CNDTR5 = size;
    DMA1_CCR5 = DMA_CCR_MINC | DMA_CCR_CIRC | DMA_CCR_HTIE | DMA_CCR_TCIE | DMA_CCR_EN; /* 8-bit, from the USART */
    USART_CR3(USART2_BASE) |= USART_CR3_DMAR;
    USART_CR1(USART2_BASE) |= USART_CR1_RE | USART_CR1_IDLEIE;
    nvic_enable(CHIP_CONSOLE_DMA_IRQ);
    nvic_enable(CHIP_CONSOLE_IRQ);
}

uint32_t board_console_rx_left(void)
{
    return DMA1_CNDTR5;
}

/* Both interrupts only wake the main loop (console_idle's WFI): it reads what the DMA wrote. */
void Console_IRQHandler(void)
{
    USART_ICR(USART2_BASE) = USART_ICR_IDLECF | USART_ICR_ORECF; /* ORE: a byte lost, SMP's CRC notices */
}

void Console_DMA_IRQHandler(void)
{
    DMA1_IFCR = DMA_IFCR_CGIF5;
}

enum reset_cause board_reset_cause(void)
{
    uint32_t csr = RCC_CSR;
    RCC_CSR |= RCC_CSR_RMVF;
    /* PINRSTF accompanies every reset (NRST is pulsed): test it last. */
    if (csr & RCC_CSR_PORRSTF) {
        return RESET_POWER_ON;
    }
    if (csr & RCC_CSR_IWDGRSTF) {
        return RESET_WATCHDOG;
    }
    if (csr & RCC_CSR_SFTRSTF) {
        return RESET_SOFTWARE;
    }
    return RESET_PIN;
}

static void flash_unlock(void)
{
    if (FLASH_PECR & FLASH_PECR_PELOCK) {
        FLASH_PEKEYR = FLASH_PEKEY1;
        FLASH_PEKEYR = FLASH_PEKEY2;
    }
    if (FLASH_PECR & FLASH_PECR_PRGLOCK) {
        FLASH_PRGKEYR = FLASH_PRGKEY1;
        FLASH_PRGKEYR = FLASH_PRGKEY2;
    }
    FLASH_SR = FLASH_SR_ERRORS | FLASH_SR_EOP; /* write-1-to-clear */
}

/* RM0367 3.3.5 page erase: ERASE and PROG set, then a 0 written to any word of the page. */
uint32_t board_flash_erase(uint32_t address)
{
    flash_unlock();
    FLASH_PECR |= FLASH_PECR_ERASE | FLASH_PECR_PROG;
    *(volatile uint32_t *)(address & ~(RIG_SECTOR_SIZE - 1u)) = 0;
    while (FLASH_SR & FLASH_SR_BSY) {
    }
    uint32_t errors = FLASH_SR & FLASH_SR_ERRORS;
    FLASH_SR = FLASH_SR_EOP;
    FLASH_PECR &= ~(FLASH_PECR_ERASE | FLASH_PECR_PROG);
    FLASH_PECR |= FLASH_PECR_PELOCK;
    return errors;
}

uint32_t board_flash_program(uint32_t address, const uint8_t *unit)
{
    uint32_t word;
    memcpy(&word, unit, sizeof word);

    flash_unlock();
    /* The target word reads 0x00 (erased), so the NVM programs it without an automatic erase. */
    *(volatile uint32_t *)address = word;
    while (FLASH_SR & FLASH_SR_BSY) {
    }
    uint32_t errors = FLASH_SR & FLASH_SR_ERRORS;
    FLASH_SR = FLASH_SR_EOP;
    FLASH_PECR |= FLASH_PECR_PELOCK; /* relocks program memory as well */
    return errors;
}
