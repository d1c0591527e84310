/* What main.c needs from a part: one implementation per variant in firmware/<variant>/board.c.
 * Everything here touches the real peripheral registers of that part; there is no HAL. */
#ifndef RIG_BOARD_H
#define RIG_BOARD_H

#include <stdint.h>

/* A SysTick every RIG_TICK_MS milliseconds: fine enough for every wait the app makes (300 ms
 * health settle, 250 ms reset delay, 1 s heartbeat), and an idle part - asleep in WFI between
 * ticks - wakes 100 times a second rather than 1000 (less power on silicon, less host CPU on the
 * emulated core). rig_ticks_ms counts milliseconds either way. */
#define RIG_TICK_MS 10u

/* Clocks, console UART (115200 8N1) and the SysTick. */
void board_init(void);
void board_putc(char c);
/* Wait until the last byte has left the shift register (before a reset cuts it off). */
void board_console_drain(void);
/* Console receive by DMA: each byte the USART receives goes into `ring` (circular, `size`
 * bytes), no interrupt per byte; the USART's idle-line and the DMA's half/full interrupts wake
 * the core. board_console_rx_left() is the DMA's count of transfers left before it wraps. */
void board_console_rx_start(volatile uint8_t *ring, uint32_t size);
uint32_t board_console_rx_left(void);

/* Reset cause from the RCC reset flags; the flags are then cleared so the next reset reports
 * only its own cause. main.c prints them with docs/console.md's words. */
enum reset_cause { RESET_POWER_ON, RESET_PIN, RESET_WATCHDOG, RESET_SOFTWARE, RESET_BROWNOUT };
enum reset_cause board_reset_cause(void);

/* Independent watchdog: once started it cannot be stopped; only a feed holds off the reset. */
void board_watchdog_start(void);
void board_watchdog_feed(void);

/* Program one flash write unit (RIG_WRITE_SIZE bytes, aligned) through the FLASH controller.
 * Returns 0 on success, the controller's error flags otherwise. */
uint32_t board_flash_program(uint32_t address, const uint8_t *unit);

/* Erase the sector (H7: 128 KiB) or page (L0: 128 B) that holds address, RIG_SECTOR_SIZE aligned.
 * Returns 0 on success, the controller's error flags otherwise. */
uint32_t board_flash_erase(uint32_t address);

#endif
