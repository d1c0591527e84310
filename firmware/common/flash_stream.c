#include "flash_stream.h"

#include <string.h>

#include "board.h"

void flash_stream_open(flash_stream_t *s, uint32_t base, uint32_t size)
{
    s->base = base;
    s->size = size;
    s->written = 0;
    s->erased_end = base;
    s->fill = 0;
}

int flash_stream_erase_at(flash_stream_t *s, uint32_t addr)
{
    uint32_t sector = addr & ~(RIG_SECTOR_SIZE - 1u);
    if (addr < s->erased_end) {
        return 0;
    }
    if (board_flash_erase(sector)) {
        return -1;
    }
    if (sector == s->erased_end) {
        s->erased_end = sector + RIG_SECTOR_SIZE;
    }
    return 0;
}

static int program_unit(flash_stream_t *s)
{
    uint32_t addr = s->base + s->written;
    if (s->written + RIG_WRITE_SIZE > s->size || flash_stream_erase_at(s, addr) < 0 ||
        board_flash_program(addr, s->unit)) {
        return -1;
    }
    s->written += RIG_WRITE_SIZE;
    s->fill = 0;
    return 0;
}

int flash_stream_write(flash_stream_t *s, const uint8_t *data, uint32_t len)
{
    while (len) {
        uint32_t n = RIG_WRITE_SIZE - s->fill;
        n = n < len ? n : len;
        memcpy(s->unit + s->fill, data, n);
        s->fill += n;
        data += n;
        len -= n;
        if (s->fill == RIG_WRITE_SIZE && program_unit(s) < 0) {
            return -1;
        }
    }
    return 0;
}

int flash_stream_flush(flash_stream_t *s)
{
    if (!s->fill) {
        return 0;
    }
    memset(s->unit + s->fill, RIG_ERASED, RIG_WRITE_SIZE - s->fill);
    return program_unit(s);
}

int flash_stream_discard(flash_stream_t *s)
{
    for (uint32_t sector = s->base; sector < s->erased_end; sector += RIG_SECTOR_SIZE) {
        if (board_flash_erase(sector)) {
            return -1;
        }
    }
    s->written = 0;
    s->fill = 0;
    return 0;
}
