/* SHA-256 (FIPS 180-4), small rather than fast: the applier hashes each image once. */
#ifndef RD_SHA256_H
#define RD_SHA256_H

#include <stdint.h>

typedef struct {
    uint32_t h[8];
    uint64_t length; /* bytes hashed so far */
    uint8_t block[64];
} rd_sha256_t;

void rd_sha256_init(rd_sha256_t *s);
void rd_sha256_update(rd_sha256_t *s, const uint8_t *data, uint32_t len);
void rd_sha256_final(rd_sha256_t *s, uint8_t digest[32]);

#endif
