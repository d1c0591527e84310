/* The container and the instruction stream (docs/delta-format.md); codecs in rd_lzss.c, rd_lzma.c. */
#include "rdelta.h"

#include <string.h>

#define MAGIC "RDLT"
#define OP_COPY 0
#define OP_ADD 1
#define OP_INSERT 2
#define OP_SEEK 3

uint32_t rdelta_state_size(void) { return sizeof(rdelta_t); }

static uint32_t crc32_update(uint32_t crc, const uint8_t *p, uint32_t len)
{
    /* Bitwise: no 1 KiB table on a 2 KiB-RAM part; the payload is CRC'd once. */
    crc = ~crc;
    while (len--) {
        unsigned k;
        crc ^= *p++;
        for (k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1)));
    }
    return ~crc;
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int fill(rdelta_t *st)
{
    int n = st->io->read_patch(st->io->ctx, st->in_off, st->in, RDELTA_IN_CHUNK);
    if (n < 0 || n > (int)RDELTA_IN_CHUNK)
        return RDELTA_E_IO;
    if (n == 0)
        return RDELTA_E_TRUNCATED;
    st->in_off += (uint32_t)n;
    st->in_len = (uint32_t)n;
    st->in_idx = 0;
    return 0;
}

int rdelta_in_byte(rdelta_t *st)
{
    uint8_t b;
    int e;
    if (!st->payload_left)
        return RDELTA_E_TRUNCATED;
    if (st->in_idx == st->in_len && (e = fill(st)) < 0)
        return e;
    b = st->in[st->in_idx++];
    st->payload_left--;
    st->crc = crc32_update(st->crc, &b, 1);
    return b;
}

/* The header, read into the page buffer; checks all that can be checked before any write. */
static int read_header(rdelta_t *st, uint8_t *h)
{
    uint32_t got = 0;
    while (got < RDELTA_HEADER_SIZE) {
        int e = fill(st);
        uint32_t n;
        if (e < 0)
            return e;
        n = st->in_len < RDELTA_HEADER_SIZE - got ? st->in_len : RDELTA_HEADER_SIZE - got;
        memcpy(h + got, st->in, n);
        st->in_idx = n;
        got += n;
    }
    if (memcmp(h, MAGIC, 4) || crc32_update(0, h, 92) != le32(h + 92))
        return RDELTA_E_HEADER;
    if (h[4] != 1 && h[4] != RDELTA_VERSION)
        return RDELTA_E_VERSION;
    /* Version 1 had byte 7 reserved (0): a patch. A full image references no old image and its
     * stream is the image itself. */
    if (h[7] > RDELTA_KIND_FULL || (h[4] == 1 && h[7]))
        return RDELTA_E_HEADER;
    if (h[7] == RDELTA_KIND_FULL) {
        uint8_t old_sha = 0;
        unsigned i;
        for (i = 24; i < 56; i++)
            old_sha |= h[i];
        if (old_sha || le32(h + 8) || le32(h + 16) != le32(h + 12))
            return RDELTA_E_HEADER;
    }
    return 0;
}

/* Refuse the wrong old image before the first write: size and SHA-256 of the old slot. */
static int check_source(rdelta_t *st, uint8_t *buf, uint32_t old_size, const uint8_t *want)
{
    uint8_t got[32];
    uint32_t off = 0;
    rd_sha256_init(&st->sha);
    while (off < old_size) {
        uint32_t n = old_size - off < st->io->page_size ? old_size - off : st->io->page_size;
        if (st->io->read_old(st->io->ctx, off, buf, n) < 0)
            return RDELTA_E_IO;
        rd_sha256_update(&st->sha, buf, n);
        off += n;
    }
    rd_sha256_final(&st->sha, got);
    return memcmp(got, want, 32) ? RDELTA_E_SOURCE : 0;
}

int rd_codec_init(rdelta_t *st, uint8_t kind, uint8_t param)
{
    st->codec.kind = kind;
#ifdef RDELTA_WITH_LZSS
    if (kind == 1)
        return rd_lzss_init(st, param);
#endif
#ifdef RDELTA_WITH_LZMA
    if (kind == 2)
        return rd_lzma_init(st, param);
#endif
    (void)param;
    return RDELTA_E_CODEC;
}

int rd_codec_byte(rdelta_t *st)
{
    if (!st->stream_left)
        return RDELTA_E_CORRUPT; /* an op needs more bytes than the stream has */
    st->stream_left--;
#if defined(RDELTA_WITH_LZSS) && defined(RDELTA_WITH_LZMA)
    return st->codec.kind == 1 ? rd_lzss_byte(st) : rd_lzma_byte(st);
#elif defined(RDELTA_WITH_LZSS)
    return rd_lzss_byte(st);
#else
    return rd_lzma_byte(st);
#endif
}

/* One byte of the new image into the page buffer; a full page is hashed, then written unless it
 * lies below the resume offset. The last, short page is held back for the final checks. */
static int emit(rdelta_t *st, uint8_t b)
{
    const rdelta_io_t *io = st->io;
    uint32_t in_page = st->out_pos % io->page_size;
    if (st->out_pos >= st->new_size)
        return RDELTA_E_CORRUPT;
    io->page[in_page] = b;
    st->out_pos++;
    if (in_page + 1 == io->page_size) {
        uint32_t page_off = st->out_pos - io->page_size;
        rd_sha256_update(&st->sha, io->page, io->page_size);
        if (page_off >= st->resume_at && io->write_new(io->ctx, page_off, io->page, io->page_size) < 0)
            return RDELTA_E_IO;
    }
    return 0;
}

static int read_old_chunk(rdelta_t *st, uint32_t n)
{
    return st->io->read_old(st->io->ctx, st->old_pos, st->old, n) < 0 ? RDELTA_E_IO : 0;
}

static int op_len(rdelta_t *st, uint32_t *kind, uint32_t *n)
{
    uint32_t v = 0;
    unsigned shift;
    for (shift = 0; shift < 35; shift += 7) {
        int b = rd_codec_byte(st);
        if (b < 0)
            return b;
        if (shift == 28 && (b & 0xF0))
            return RDELTA_E_CORRUPT; /* over 32 bits, or a sixth byte */
        v |= (uint32_t)(b & 0x7F) << shift;
        if (!(b & 0x80)) {
            *kind = v & 3;
            *n = v >> 2;
            return *n ? 0 : RDELTA_E_CORRUPT;
        }
    }
    return RDELTA_E_CORRUPT;
}

static int run_op(rdelta_t *st, uint32_t kind, uint32_t n, uint32_t old_size)
{
    int e, b;
    if (kind == OP_SEEK) {
        /* zigzag: even n moves forward n/2, odd n moves back (n+1)/2 */
        uint32_t step = (n >> 1) + (n & 1);
        if (n & 1 ? step > st->old_pos : step > old_size - st->old_pos)
            return RDELTA_E_CORRUPT;
        st->old_pos = n & 1 ? st->old_pos - step : st->old_pos + step;
        return 0;
    }
    if (n > st->new_size - st->out_pos)
        return RDELTA_E_CORRUPT;
    if (kind == OP_INSERT) {
        while (n--) {
            if ((b = rd_codec_byte(st)) < 0 || (b = emit(st, (uint8_t)b)) < 0)
                return b;
        }
        return 0;
    }
    if (n > old_size - st->old_pos)
        return RDELTA_E_CORRUPT;
    while (n) {
        uint32_t chunk = n < RDELTA_OLD_CHUNK ? n : RDELTA_OLD_CHUNK, i;
        if ((e = read_old_chunk(st, chunk)) < 0)
            return e;
        for (i = 0; i < chunk; i++) {
            uint8_t out = st->old[i];
            if (kind == OP_ADD) {
                if ((b = rd_codec_byte(st)) < 0)
                    return b;
                out = (uint8_t)(out + b);
            }
            if ((e = emit(st, out)) < 0)
                return e;
        }
        st->old_pos += chunk;
        n -= chunk;
    }
    return 0;
}

int rdelta_apply(rdelta_t *st, const rdelta_io_t *io, uint32_t resume_at)
{
    uint8_t *h = io->page, old_sha[32], new_sha[32], digest[32];
    uint32_t old_size, payload_crc, kind, n, tail;
    uint8_t codec, param;
    int e;
    if (io->page_size < RDELTA_HEADER_SIZE || resume_at % io->page_size)
        return RDELTA_E_ARG;
    memset(st, 0, sizeof *st);
    st->io = io;
    if ((e = read_header(st, h)) < 0)
        return e;
    codec = h[5];
    param = h[6];
    st->kind = h[7];
    old_size = le32(h + 8);
    st->new_size = le32(h + 12);
    st->stream_left = le32(h + 16);
    st->payload_left = le32(h + 20);
    payload_crc = le32(h + 88);
    memcpy(old_sha, h + 24, 32); /* the page buffer is reused from here on */
    memcpy(new_sha, h + 56, 32);
    if (st->new_size > io->new_capacity || resume_at > st->new_size)
        return RDELTA_E_ARG;
    if (st->kind == RDELTA_KIND_PATCH && (e = check_source(st, io->page, old_size, old_sha)) < 0)
        return e;
    st->resume_at = resume_at;
    rd_sha256_init(&st->sha);
    if ((e = rd_codec_init(st, codec, param)) < 0)
        return e;
    while (st->stream_left) {
        if (st->kind == RDELTA_KIND_FULL) {
            if ((e = rd_codec_byte(st)) < 0 || (e = emit(st, (uint8_t)e)) < 0)
                return e;
        } else if ((e = op_len(st, &kind, &n)) < 0 || (e = run_op(st, kind, n, old_size)) < 0) {
            return e;
        }
    }
    if (st->out_pos != st->new_size)
        return RDELTA_E_CORRUPT;
    /* Drain what the codec did not need (end marker, padding bits) to finish the CRC. */
    while (st->payload_left) {
        if ((e = rdelta_in_byte(st)) < 0)
            return e;
    }
    if (st->crc != payload_crc)
        return RDELTA_E_CRC;
    /* The last, short page is written only once the whole result is known to be right. */
    tail = st->new_size % io->page_size;
    rd_sha256_update(&st->sha, io->page, tail);
    rd_sha256_final(&st->sha, digest);
    if (memcmp(digest, new_sha, 32))
        return RDELTA_E_RESULT;
    if (tail && st->new_size - tail >= resume_at && io->write_new(io->ctx, st->new_size - tail, io->page, tail) < 0)
        return RDELTA_E_IO;
    return RDELTA_OK;
}
