/* A delta container applied while it uploads: firmware/lib's rdelta pulls the patch through a
 * callback, so it runs as a coroutine on a stack of its own and yields back to the SMP server
 * whenever it has used up the chunk it was given. Old image = slot 0, new image -> the stream. */
#ifndef RIG_DELTA_UPLOAD_H
#define RIG_DELTA_UPLOAD_H

#include <stdint.h>

#include "flash_stream.h"

#define DELTA_MAGIC "RDLT"

void delta_start(flash_stream_t *out);
/* Give the applier the next chunk (eof: the last one). 1 = it wants more, 0 = the new image is
 * written and its SHA-256 checked, < 0 = refused (an RDELTA_E_* code). */
int delta_feed(const uint8_t *data, uint32_t len, int eof);

#endif
