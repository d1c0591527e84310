#include "cbor.h"

#include <string.h>

#define INDEFINITE 0xFFFFFFFFu
#define BREAK 0xFFu

typedef struct {
    const uint8_t *p, *end;
} cbor_in_t;

typedef struct {
    uint8_t major;
    uint8_t info;       /* the additional information (low 5 bits) */
    uint8_t big;        /* the argument did not fit 32 bits */
    uint8_t indefinite;
    uint32_t arg;
} head_t;

static int read_head(cbor_in_t *in, head_t *h)
{
    if (in->p >= in->end) {
        return -1;
    }
    uint8_t b = *in->p++;
    h->major = b >> 5;
    h->info = b & 0x1Fu;
    h->big = 0;
    h->indefinite = 0;
    h->arg = h->info;
    if (h->info < 24u) {
        return 0;
    }
    if (h->info == 31u) {
        /* indefinite strings and containers; for major 7 it is the break, which only a caller
         * inside an indefinite container may take */
        h->indefinite = 1;
        return h->major >= 2u && h->major <= 5u ? 0 : -1;
    }
    if (h->info > 27u) {
        return -1; /* reserved */
    }
    unsigned n = 1u << (h->info - 24u);
    if ((uint32_t)(in->end - in->p) < n) {
        return -1;
    }
    uint32_t v = 0;
    for (unsigned i = 0; i < n; i++) {
        if (n == 8u && i < 4u && in->p[i]) {
            h->big = 1;
        }
        v = (v << 8) | in->p[i];
    }
    in->p += n;
    h->arg = v;
    return 0;
}

/* Skip one whole data item, nested ones included, with an explicit stack of item counts. */
static int skip(cbor_in_t *in)
{
    uint32_t left[CBOR_MAX_DEPTH];
    unsigned depth = 0;
    left[0] = 1;
    for (;;) {
        if (left[depth] == 0) {
            if (depth == 0) {
                return 0;
            }
            depth--;
            continue;
        }
        if (left[depth] == INDEFINITE) {
            if (in->p >= in->end) {
                return -1;
            }
            if (*in->p == BREAK) {
                in->p++;
                depth--; /* depth 0 is never indefinite */
                continue;
            }
        } else {
            left[depth]--;
        }
        head_t h;
        if (read_head(in, &h) < 0 || h.big) {
            return -1;
        }
        uint32_t items;
        switch (h.major) {
        case 2:
        case 3:
            if (h.indefinite || h.arg > (uint32_t)(in->end - in->p)) {
                return -1; /* chunked strings are not used by SMP clients */
            }
            in->p += h.arg;
            continue;
        case 4:
        case 5:
            if (h.indefinite) {
                items = INDEFINITE;
            } else if (h.arg > (uint32_t)(in->end - in->p)) {
                return -1; /* more items than bytes left: cannot be */
            } else {
                items = h.major == 5u ? 2u * h.arg : h.arg;
            }
            break;
        case 6:
            items = 1; /* a tag: its content follows */
            break;
        default:
            continue; /* integers, simple values and floats: the head was all */
        }
        if (items == 0) {
            continue;
        }
        if (++depth >= CBOR_MAX_DEPTH) {
            return -1;
        }
        left[depth] = items;
    }
}

static int read_value(cbor_in_t *in, cbor_field_t *f)
{
    head_t h;
    if (read_head(in, &h) < 0) {
        return -1;
    }
    switch (f->type) {
    case CBOR_U32:
        if (h.major != 0 || h.big) {
            return -1;
        }
        f->u = h.arg;
        break;
    case CBOR_BOOL:
        if (h.major != 7 || (h.info != 20u && h.info != 21u)) {
            return -1;
        }
        f->u = h.info == 21u;
        break;
    default: /* CBOR_BSTR, CBOR_TSTR */
        if (h.major != (f->type == CBOR_BSTR ? 2u : 3u) || h.indefinite || h.big ||
            h.arg > (uint32_t)(in->end - in->p)) {
            return -1;
        }
        f->ptr = in->p;
        f->len = h.arg;
        in->p += h.arg;
        break;
    }
    f->found = 1;
    return 0;
}

int cbor_decode_map(const uint8_t *body, uint32_t len, cbor_field_t *fields, unsigned count)
{
    cbor_in_t in = {body, body + len};
    head_t h;
    for (unsigned i = 0; i < count; i++) {
        fields[i].found = 0;
    }
    if (read_head(&in, &h) < 0 || h.major != 5 || h.big) {
        return -1;
    }
    uint32_t pairs = h.indefinite ? INDEFINITE : h.arg;
    while (pairs) {
        if (pairs == INDEFINITE) {
            if (in.p >= in.end) {
                return -1;
            }
            if (*in.p == BREAK) {
                return 0;
            }
        } else {
            pairs--;
        }
        head_t key;
        if (read_head(&in, &key) < 0 || key.major != 3 || key.indefinite || key.big ||
            key.arg > (uint32_t)(in.end - in.p)) {
            return -1;
        }
        const uint8_t *name = in.p;
        in.p += key.arg;
        cbor_field_t *match = 0;
        for (unsigned i = 0; i < count; i++) {
            if (strlen(fields[i].key) == key.arg && memcmp(fields[i].key, name, key.arg) == 0) {
                match = &fields[i];
            }
        }
        if (match ? read_value(&in, match) < 0 : skip(&in) < 0) {
            return -1;
        }
    }
    return 0;
}

static void put(cbor_out_t *out, const uint8_t *data, uint32_t len)
{
    if (out->overflow || len > (uint32_t)(out->end - out->p)) {
        out->overflow = 1;
        return;
    }
    memcpy(out->p, data, len);
    out->p += len;
}

static void put_head(cbor_out_t *out, uint8_t major, uint32_t arg)
{
    uint8_t h[5];
    unsigned n;
    if (arg < 24u) {
        h[0] = (uint8_t)(major << 5 | arg);
        n = 1;
    } else if (arg <= 0xFFu) {
        h[0] = (uint8_t)(major << 5 | 24u);
        h[1] = (uint8_t)arg;
        n = 2;
    } else if (arg <= 0xFFFFu) {
        h[0] = (uint8_t)(major << 5 | 25u);
        h[1] = (uint8_t)(arg >> 8);
        h[2] = (uint8_t)arg;
        n = 3;
    } else {
        h[0] = (uint8_t)(major << 5 | 26u);
        h[1] = (uint8_t)(arg >> 24);
        h[2] = (uint8_t)(arg >> 16);
        h[3] = (uint8_t)(arg >> 8);
        h[4] = (uint8_t)arg;
        n = 5;
    }
    put(out, h, n);
}

static void put_byte(cbor_out_t *out, uint8_t b) { put(out, &b, 1); }

void cbor_map_begin(cbor_out_t *out) { put_byte(out, 0xBF); }
void cbor_list_begin(cbor_out_t *out) { put_byte(out, 0x9F); }
void cbor_end(cbor_out_t *out) { put_byte(out, BREAK); }
void cbor_uint(cbor_out_t *out, uint32_t value) { put_head(out, 0, value); }
void cbor_bool(cbor_out_t *out, int value) { put_byte(out, value ? 0xF5 : 0xF4); }

void cbor_tstrn(cbor_out_t *out, const uint8_t *s, uint32_t len)
{
    put_head(out, 3, len);
    put(out, s, len);
}

void cbor_tstr(cbor_out_t *out, const char *s) { cbor_tstrn(out, (const uint8_t *)s, strlen(s)); }

void cbor_bstr(cbor_out_t *out, const uint8_t *s, uint32_t len)
{
    put_head(out, 2, len);
    put(out, s, len);
}
