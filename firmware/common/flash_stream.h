/* Sequential writes into a flash area, as Zephyr's stream_flash with progressive erase: bytes
 * collect into one write unit, and each sector is erased just before its first unit is
 * programmed, so an upload never waits for a whole-slot erase up front. */
#ifndef RIG_FLASH_STREAM_H
#define RIG_FLASH_STREAM_H

#include <stdint.h>

#include "rig_layout.h"

typedef struct {
    uint32_t base, size;   /* the area, bus addresses */
    uint32_t written;      /* bytes programmed from base */
    uint32_t erased_end;   /* sectors from base up to here are erased by this stream */
    uint32_t fill;
    uint8_t unit[RIG_WRITE_SIZE];
} flash_stream_t;

void flash_stream_open(flash_stream_t *s, uint32_t base, uint32_t size);
int flash_stream_write(flash_stream_t *s, const uint8_t *data, uint32_t len); /* 0, or -1 */
int flash_stream_flush(flash_stream_t *s); /* pads the last unit with the erased value */
/* Erase the sector holding bus address addr unless this stream already erased it. */
int flash_stream_erase_at(flash_stream_t *s, uint32_t addr);
/* Erase every sector this stream erased (and wrote): the area reads erased again. */
int flash_stream_discard(flash_stream_t *s);

#endif
