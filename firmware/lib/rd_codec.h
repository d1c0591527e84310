/* The payload codecs, decoding one byte per call from rdelta_in_byte(). */
#ifndef RD_CODEC_H
#define RD_CODEC_H

#include <stdint.h>

#if !defined(RDELTA_WITH_LZSS) && !defined(RDELTA_WITH_LZMA)
#error "define RDELTA_WITH_LZSS (profile P1) and/or RDELTA_WITH_LZMA (profile P2)"
#endif

struct rdelta;

#ifdef RDELTA_WITH_LZSS
#define RD_LZSS_WINDOW_BITS 8
#define RD_LZSS_LOOKAHEAD_BITS 7
#define RD_LZSS_PARAM ((RD_LZSS_WINDOW_BITS << 4) | RD_LZSS_LOOKAHEAD_BITS)
typedef struct {
    uint8_t window[1u << RD_LZSS_WINDOW_BITS];
    uint8_t wpos, bits, nbits;
    uint16_t match_left, dist;
} rd_lzss_t;
#endif

#ifdef RDELTA_WITH_LZMA
#define RD_LZMA_DICT 4096u
#define RD_LZMA_LCLP_MAX 1 /* lc + lp: literal tables are 0x300 << (lc + lp) probabilities */
typedef uint16_t rd_prob;
typedef struct {
    rd_prob choice, choice2, low[16][8], mid[16][8], high[256];
} rd_lzma_len_t;
typedef struct {
    rd_prob is_match[12 << 4], is_rep[12], is_rep_g0[12], is_rep_g1[12], is_rep_g2[12];
    rd_prob is_rep0_long[12 << 4], pos_slot[4][64], pos_special[1 + 128 - 14], align[16];
    rd_lzma_len_t len, rep_len;
    rd_prob literal[0x300u << RD_LZMA_LCLP_MAX];
} rd_lzma_probs_t;
typedef struct {
    rd_lzma_probs_t p;
    uint8_t dict[RD_LZMA_DICT];
    uint32_t range, code, total, rep[4], match_left;
    uint8_t state, lc, lp, pb;
} rd_lzma_t;
#endif

typedef struct {
    uint8_t kind; /* 1 = LZSS, 2 = LZMA */
    union {
#ifdef RDELTA_WITH_LZSS
        rd_lzss_t lzss;
#endif
#ifdef RDELTA_WITH_LZMA
        rd_lzma_t lzma;
#endif
    } u;
} rd_codec_t;

#ifdef RDELTA_WITH_LZSS
int rd_lzss_init(struct rdelta *st, uint8_t param);
int rd_lzss_byte(struct rdelta *st);
#endif
#ifdef RDELTA_WITH_LZMA
int rd_lzma_init(struct rdelta *st, uint8_t param);
int rd_lzma_byte(struct rdelta *st);
#endif

/* Set up for codec `kind` with its header parameter byte: 0, or RDELTA_E_CODEC / _TRUNCATED / _CORRUPT. */
int rd_codec_init(struct rdelta *st, uint8_t kind, uint8_t param);
/* The next decoded stream byte (0..255) or a negative RDELTA_E_* code. */
int rd_codec_byte(struct rdelta *st);

#endif
