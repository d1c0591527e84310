/* P1: LZSS in heatshrink's bit format (MSB first). Tag 1: an 8-bit literal. Tag 0: a back
 * reference, WINDOW_BITS of (distance - 1) then LOOKAHEAD_BITS of (count - 1). The window starts
 * zero-filled, as heatshrink's encoder assumes. */
#include "rdelta.h"

#ifdef RDELTA_WITH_LZSS

#include <string.h>

static int bits(rdelta_t *st, unsigned n)
{
    rd_lzss_t *z = &st->codec.u.lzss;
    int v = 0;
    while (n--) {
        if (!z->nbits) {
            int b = rdelta_in_byte(st);
            if (b < 0)
                return b;
            z->bits = (uint8_t)b;
            z->nbits = 8;
        }
        v = v << 1 | (z->bits >> 7);
        z->bits <<= 1;
        z->nbits--;
    }
    return v;
}

int rd_lzss_init(rdelta_t *st, uint8_t param)
{
    if (param != RD_LZSS_PARAM)
        return RDELTA_E_CODEC;
    memset(&st->codec.u.lzss, 0, sizeof st->codec.u.lzss);
    return 0;
}

int rd_lzss_byte(rdelta_t *st)
{
    rd_lzss_t *z = &st->codec.u.lzss;
    int b;
    if (!z->match_left) {
        int tag = bits(st, 1);
        if (tag < 0)
            return tag;
        if (tag) {
            b = bits(st, 8);
            if (b < 0)
                return b;
            z->window[z->wpos++] = (uint8_t)b;
            return b;
        }
        b = bits(st, RD_LZSS_WINDOW_BITS);
        if (b < 0)
            return b;
        z->dist = (uint16_t)(b + 1);
        b = bits(st, RD_LZSS_LOOKAHEAD_BITS);
        if (b < 0)
            return b;
        z->match_left = (uint16_t)(b + 1);
    }
    z->match_left--;
    b = z->window[(uint8_t)(z->wpos - z->dist)];
    z->window[z->wpos++] = (uint8_t)b;
    return b;
}

#endif
