/* rdelta: the device's delta-patch applier (format: docs/delta-format.md).
 *
 * Portable C99, no malloc, no libc beyond memset/memcpy. It reads the patch and the old image
 * through callbacks and writes the new image one page at a time, so the old image can stay in
 * the running slot and the new one goes sequentially into the other slot.
 *
 * Resume after a reset: the applier keeps no state in flash. Call rdelta_apply() again with
 * resume_at = the first page of the new slot that was not completely written; pages below it are
 * decoded again (the old slot is untouched, so they come out identical) and hashed, but not
 * written. The caller records resume_at, e.g. after each page write.
 *
 * Two kinds of container, applied the same way in the same RAM: a patch (an instruction stream
 * against the old image, whose SHA-256 is checked first) and a full image (the payload decodes to
 * the new image itself; the old slot is never read). rig delta make ships whichever is smaller.
 *
 * Build options: RDELTA_WITH_LZSS (profile P1) and/or RDELTA_WITH_LZMA (profile P2); a device
 * build defines the one its profile needs.
 */
#ifndef RDELTA_H
#define RDELTA_H

#include <stdint.h>

#include "rd_codec.h"
#include "rd_sha256.h"

#define RDELTA_HEADER_SIZE 96u
#define RDELTA_VERSION 2u /* written; version 1 (patches only) is still read */

/* Header byte 7 (version 2; 0 in version 1). */
#define RDELTA_KIND_PATCH 0u /* instruction stream against the old image */
#define RDELTA_KIND_FULL 1u  /* the new image itself, compressed; old_size 0, stream_size = new_size */

enum {
    RDELTA_OK = 0,
    RDELTA_E_HEADER = -1,    /* not a patch, or its header is corrupt or inconsistent (kind, sizes) */
    RDELTA_E_VERSION = -2,   /* format version unknown */
    RDELTA_E_CODEC = -3,     /* codec or codec parameters not built into this applier */
    RDELTA_E_SOURCE = -4,    /* the old image is not the one the patch was made from */
    RDELTA_E_TRUNCATED = -5, /* the patch ends early */
    RDELTA_E_CORRUPT = -6,   /* the payload decodes to invalid instructions */
    RDELTA_E_CRC = -7,       /* payload CRC mismatch */
    RDELTA_E_RESULT = -8,    /* the new image does not have the SHA-256 the header promises */
    RDELTA_E_IO = -9,        /* a callback failed */
    RDELTA_E_ARG = -10,      /* page size, resume offset or slot capacity unusable */
};

typedef struct rdelta_io {
    /* Next bytes of the patch at offset (always sequential from 0): bytes read, 0 at end, < 0 on error. */
    int (*read_patch)(void *ctx, uint32_t offset, uint8_t *buf, uint32_t len);
    /* len bytes of the old image at offset: 0 or < 0 on error. */
    int (*read_old)(void *ctx, uint32_t offset, uint8_t *buf, uint32_t len);
    /* One page of the new image at offset (the last one may be short): 0 or < 0 on error. */
    int (*write_new)(void *ctx, uint32_t offset, const uint8_t *buf, uint32_t len);
    void *ctx;
    uint8_t *page;          /* the flash-page buffer, page_size bytes, at least RDELTA_HEADER_SIZE */
    uint32_t page_size;
    uint32_t new_capacity;  /* bytes free in the new slot; a bigger result is refused up front */
} rdelta_io_t;

#define RDELTA_IN_CHUNK 32u  /* patch bytes fetched per read_patch call */
#define RDELTA_OLD_CHUNK 32u /* old-image bytes fetched per read_old call while patching */

typedef struct rdelta {
    const rdelta_io_t *io;
    uint32_t in_off, in_len, in_idx, payload_left, crc;
    uint8_t in[RDELTA_IN_CHUNK];
    uint8_t old[RDELTA_OLD_CHUNK];
    uint32_t old_pos, out_pos, resume_at, new_size, stream_left;
    uint8_t kind; /* RDELTA_KIND_*, once the header is read */
    rd_sha256_t sha;
    rd_codec_t codec;
} rdelta_t;

/* Apply a whole patch; RDELTA_OK once the new image is written and its SHA-256 checked. Wrong
 * source, bad header and unusable arguments are refused before the first write. */
int rdelta_apply(rdelta_t *st, const rdelta_io_t *io, uint32_t resume_at);

/* For hosts that allocate the state themselves (ctypes). */
uint32_t rdelta_state_size(void);

/* Pull the next payload byte (for the codecs): 0..255, or RDELTA_E_TRUNCATED / RDELTA_E_IO. */
int rdelta_in_byte(rdelta_t *st);

#endif
