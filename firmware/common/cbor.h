/* The CBOR that SMP bodies need (RFC 8949), with a bounded stack: no recursion, at most
 * CBOR_MAX_DEPTH nested containers, and no allocation.
 *
 * Decoding reads one map with text keys into a table of expected fields (as zcbor's
 * zcbor_map_decode_bulk): a known key must hold its type, unknown keys are skipped whole.
 * Encoding writes what Zephyr's zcbor writes without canonical mode: indefinite-length maps and
 * lists, shortest-form integers and lengths. */
#ifndef RIG_CBOR_H
#define RIG_CBOR_H

#include <stdint.h>

#define CBOR_MAX_DEPTH 8

enum cbor_type { CBOR_U32, CBOR_BSTR, CBOR_TSTR, CBOR_BOOL };

typedef struct {
    const char *key;
    uint8_t type;  /* enum cbor_type */
    uint8_t found;
    uint32_t u;    /* CBOR_U32 value, CBOR_BOOL 0/1 */
    const uint8_t *ptr; /* CBOR_BSTR/CBOR_TSTR bytes (inside the decoded buffer) */
    uint32_t len;
} cbor_field_t;

/* 0, or -1 when body is not a map with text keys or a known key holds another type. */
int cbor_decode_map(const uint8_t *body, uint32_t len, cbor_field_t *fields, unsigned count);

typedef struct {
    uint8_t *p, *end;
    int overflow; /* set once anything did not fit; the message is then unusable */
} cbor_out_t;

void cbor_map_begin(cbor_out_t *out);
void cbor_list_begin(cbor_out_t *out);
void cbor_end(cbor_out_t *out);
void cbor_uint(cbor_out_t *out, uint32_t value);
void cbor_bool(cbor_out_t *out, int value);
void cbor_tstr(cbor_out_t *out, const char *s);
void cbor_tstrn(cbor_out_t *out, const uint8_t *s, uint32_t len);
void cbor_bstr(cbor_out_t *out, const uint8_t *s, uint32_t len);

#endif
