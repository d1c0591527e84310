/* Console input: the USART RX interrupt fills a ring, the main loop drains it and sleeps (WFI)
 * while it is empty, so an idle board waits for its next interrupt instead of spinning. */
#ifndef RIG_CONSOLE_H
#define RIG_CONSOLE_H

#include <stdint.h>

void console_rx(uint8_t byte); /* from the RX interrupt */
int console_getc(void);        /* next byte, or -1 when none is waiting */
void console_idle(void);       /* sleep until an interrupt (the next SysTick at the latest) */

#endif
