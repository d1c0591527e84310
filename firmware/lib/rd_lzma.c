/* P2: a streaming raw-LZMA1 decoder for a 4 KiB dictionary and lc + lp <= RD_LZMA_LCLP_MAX.
 * Written from the LZMA specification (lzma-specification.txt in the LZMA SDK): range decoder,
 * adaptive 11-bit probabilities, 12-state match/literal model, rep0..rep3 distances. It decodes
 * one byte per call; a match is copied out of the dictionary over the following calls. The
 * caller knows the stream length, so the optional end marker is never read. */
#include "rdelta.h"

#ifdef RDELTA_WITH_LZMA

#include <string.h>

#define PROB_BITS 11
#define PROB_INIT (1u << (PROB_BITS - 1))
#define MOVE_BITS 5
#define TOP (1u << 24)

static int rc_normalize(rdelta_t *st, rd_lzma_t *d)
{
    if (d->range < TOP) {
        int b = rdelta_in_byte(st);
        if (b < 0)
            return b;
        d->range <<= 8;
        d->code = d->code << 8 | (uint32_t)b;
    }
    return 0;
}

/* 0 or 1, or a negative error */
static int rc_bit(rdelta_t *st, rd_prob *p)
{
    rd_lzma_t *d = &st->codec.u.lzma;
    uint32_t bound = (d->range >> PROB_BITS) * *p;
    int bit, e;
    if (d->code < bound) {
        d->range = bound;
        *p = (rd_prob)(*p + (((1u << PROB_BITS) - *p) >> MOVE_BITS));
        bit = 0;
    } else {
        d->range -= bound;
        d->code -= bound;
        *p -= *p >> MOVE_BITS;
        bit = 1;
    }
    e = rc_normalize(st, d);
    return e < 0 ? e : bit;
}

static int rc_direct(rdelta_t *st, unsigned n)
{
    rd_lzma_t *d = &st->codec.u.lzma;
    uint32_t v = 0;
    while (n--) {
        int e;
        d->range >>= 1;
        if (d->code >= d->range) {
            d->code -= d->range;
            v = v << 1 | 1;
        } else {
            v <<= 1;
        }
        if ((e = rc_normalize(st, d)) < 0)
            return e;
    }
    return (int)v;
}

static int bittree(rdelta_t *st, rd_prob *probs, unsigned n)
{
    unsigned m = 1, i;
    for (i = 0; i < n; i++) {
        int b = rc_bit(st, &probs[m]);
        if (b < 0)
            return b;
        m = m << 1 | (unsigned)b;
    }
    return (int)(m - (1u << n));
}

static int bittree_reverse(rdelta_t *st, rd_prob *probs, unsigned n)
{
    unsigned m = 1, sym = 0, i;
    for (i = 0; i < n; i++) {
        int b = rc_bit(st, &probs[m]);
        if (b < 0)
            return b;
        m = m << 1 | (unsigned)b;
        sym |= (unsigned)b << i;
    }
    return (int)sym;
}

/* match length minus 2 */
static int decode_len(rdelta_t *st, rd_lzma_len_t *l, unsigned pos_state)
{
    int b = rc_bit(st, &l->choice), v;
    if (b <= 0)
        return b < 0 ? b : bittree(st, l->low[pos_state], 3);
    if ((b = rc_bit(st, &l->choice2)) < 0)
        return b;
    if (!b)
        return (v = bittree(st, l->mid[pos_state], 3)) < 0 ? v : 8 + v;
    return (v = bittree(st, l->high, 8)) < 0 ? v : 16 + v;
}

static int decode_distance(rdelta_t *st, unsigned len)
{
    rd_lzma_t *d = &st->codec.u.lzma;
    int slot = bittree(st, d->p.pos_slot[len < 3 ? len : 3], 6), v;
    unsigned direct;
    uint32_t dist;
    if (slot < 4)
        return slot;
    direct = ((unsigned)slot >> 1) - 1;
    dist = (2u | ((unsigned)slot & 1)) << direct;
    if (slot < 14) {
        v = bittree_reverse(st, d->p.pos_special + dist - (unsigned)slot, direct);
    } else {
        if ((v = rc_direct(st, direct - 4)) < 0)
            return v;
        dist += (uint32_t)v << 4;
        v = bittree_reverse(st, d->p.align, 4);
    }
    /* Any distance past the 4 KiB dictionary is corrupt - the end marker's 0xFFFFFFFF too, as
     * the stream length is known and the marker is never read before it is reached. */
    if (v < 0)
        return v;
    dist += (uint32_t)v;
    return dist >= RD_LZMA_DICT ? RDELTA_E_CORRUPT : (int)dist;
}

int rd_lzma_init(rdelta_t *st, uint8_t param)
{
    rd_lzma_t *d = &st->codec.u.lzma;
    rd_prob *p = (rd_prob *)&d->p;
    unsigned i;
    int b;
    if (param >= 9 * 5 * 5)
        return RDELTA_E_CODEC;
    d->lc = param % 9;
    d->lp = param / 9 % 5;
    d->pb = param / 45;
    if (d->lc + d->lp > RD_LZMA_LCLP_MAX)
        return RDELTA_E_CODEC;
    for (i = 0; i < sizeof d->p / sizeof *p; i++)
        p[i] = PROB_INIT;
    d->range = 0xFFFFFFFFu;
    d->code = d->total = d->match_left = d->state = 0;
    memset(d->rep, 0, sizeof d->rep);
    /* The range coder's first byte is always 0, then 4 bytes of code. */
    for (i = 0; i < 5; i++) {
        if ((b = rdelta_in_byte(st)) < 0)
            return b;
        if (i == 0 && b)
            return RDELTA_E_CORRUPT;
        d->code = d->code << 8 | (uint32_t)b;
    }
    return d->code == d->range ? RDELTA_E_CORRUPT : 0;
}

static uint8_t dict_at(const rd_lzma_t *d, uint32_t back)
{
    return d->dict[(d->total - back) & (RD_LZMA_DICT - 1)];
}

/* Decode one symbol: a literal (returned, 0..255) or a match (sets match_left, returns 256). */
static int decode_symbol(rdelta_t *st)
{
    rd_lzma_t *d = &st->codec.u.lzma;
    unsigned pos_state = d->total & ((1u << d->pb) - 1), s = d->state;
    int b, len;
    if ((b = rc_bit(st, &d->p.is_match[s << 4 | pos_state])) < 0)
        return b;
    if (!b) {
        unsigned prev = d->total ? dict_at(d, 1) : 0;
        unsigned lit = ((d->total & ((1u << d->lp) - 1)) << d->lc) + (prev >> (8 - d->lc));
        rd_prob *probs = d->p.literal + 0x300u * lit;
        unsigned sym = 1;
        if (s >= 7) {
            unsigned match = dict_at(d, d->rep[0] + 1);
            do {
                unsigned mbit = (match >> 7) & 1;
                match <<= 1;
                if ((b = rc_bit(st, &probs[((1 + mbit) << 8) + sym])) < 0)
                    return b;
                sym = sym << 1 | (unsigned)b;
                if (mbit != (unsigned)b)
                    break;
            } while (sym < 0x100);
        }
        while (sym < 0x100) {
            if ((b = rc_bit(st, &probs[sym])) < 0)
                return b;
            sym = sym << 1 | (unsigned)b;
        }
        d->state = (uint8_t)(s < 4 ? 0 : s < 10 ? s - 3 : s - 6);
        return (int)(sym & 0xFF);
    }
    if ((b = rc_bit(st, &d->p.is_rep[s])) < 0)
        return b;
    if (b) {
        if (!d->total)
            return RDELTA_E_CORRUPT;
        if ((b = rc_bit(st, &d->p.is_rep_g0[s])) < 0)
            return b;
        if (!b) {
            if ((b = rc_bit(st, &d->p.is_rep0_long[s << 4 | pos_state])) < 0)
                return b;
            if (!b) { /* short rep: one byte at rep0 */
                d->state = s < 7 ? 9 : 11;
                d->match_left = 1;
                return 256;
            }
        } else {
            uint32_t dist;
            if ((b = rc_bit(st, &d->p.is_rep_g1[s])) < 0)
                return b;
            if (!b) {
                dist = d->rep[1];
            } else {
                if ((b = rc_bit(st, &d->p.is_rep_g2[s])) < 0)
                    return b;
                if (!b) {
                    dist = d->rep[2];
                } else {
                    dist = d->rep[3];
                    d->rep[3] = d->rep[2];
                }
                d->rep[2] = d->rep[1];
            }
            d->rep[1] = d->rep[0];
            d->rep[0] = dist;
        }
        if ((len = decode_len(st, &d->p.rep_len, pos_state)) < 0)
            return len;
        d->state = s < 7 ? 8 : 11;
    } else {
        int dist;
        memmove(d->rep + 1, d->rep, 3 * sizeof d->rep[0]);
        if ((len = decode_len(st, &d->p.len, pos_state)) < 0)
            return len;
        d->state = s < 7 ? 7 : 10;
        if ((dist = decode_distance(st, (unsigned)len)) < 0)
            return dist;
        d->rep[0] = (uint32_t)dist;
    }
    if (d->rep[0] >= d->total)
        return RDELTA_E_CORRUPT;
    d->match_left = (uint32_t)len + 2;
    return 256;
}

int rd_lzma_byte(rdelta_t *st)
{
    rd_lzma_t *d = &st->codec.u.lzma;
    int b;
    if (d->match_left) {
        d->match_left--;
        b = dict_at(d, d->rep[0] + 1);
    } else if ((b = decode_symbol(st)) == 256) {
        d->match_left--;
        b = dict_at(d, d->rep[0] + 1);
    } else if (b < 0) {
        return b;
    }
    d->dict[d->total++ & (RD_LZMA_DICT - 1)] = (uint8_t)b;
    return b;
}

#endif
