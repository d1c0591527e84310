/* Console input: the USART's receiver writes into a ring by DMA, the main loop drains it and
 * sleeps (WFI) while it is empty, so an idle board waits for its next interrupt instead of
 * spinning, and a busy line costs no interrupt per byte. A byte overrun by the ring is lost; the
 * SMP CRC catches it. */
#ifndef RIG_CONSOLE_H
#define RIG_CONSOLE_H

void console_rx_start(void); /* start receiving (board_console_rx_start with the ring) */
int console_getc(void);      /* next byte, or -1 when none is waiting */
void console_idle(void);     /* sleep until an interrupt (the next SysTick at the latest) */

#endif
