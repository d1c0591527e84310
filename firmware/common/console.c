#include "console.h"

#include "board.h"
#include "chip.h"
#include "cortexm.h"

/* The DMA writes every received byte here, wrapping (circular mode); one reader, the main loop.
 * 256 bytes are 22 ms of the line at 115200 baud, more than a SysTick period: the main loop
 * drains it in time even when the DMA's half-transfer interrupt is the only other wake-up.
 * A power of two, so positions wrap with a mask. */
#define RING 256u
static volatile uint8_t ring[RING] CHIP_DMA_RAM __attribute__((aligned(4)));
static uint32_t head, tail; /* where the DMA wrote up to, as last read; the next byte to read */

void console_rx_start(void)
{
    board_console_rx_start(ring, RING);
}

static uint32_t written_up_to(void)
{
    return (RING - board_console_rx_left()) & (RING - 1u);
}

int console_getc(void)
{
    if (tail == head) {
        head = written_up_to(); /* one register read per burst, not per byte */
        if (tail == head) {
            return -1;
        }
    }
    uint8_t byte = ring[tail];
    tail = (tail + 1u) & (RING - 1u);
    return byte;
}

void console_idle(void)
{
    /* With interrupts masked a byte arriving after the test still ends the WFI (the idle-line
     * interrupt pends), and is taken as soon as they are unmasked again: no lost wake-up. */
    irq_disable();
    if (tail == written_up_to()) {
        wfi();
    }
    irq_enable();
}
