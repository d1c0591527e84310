/* MCUmgr image group (1): state read/write, upload, erase - Zephyr's img_mgmt for one image,
 * with progressive erase and the image check (the last upload reply says whether the slot's
 * bytes hash to "sha"). An upload whose first bytes are a rig delta container is applied while
 * it streams (delta_upload.c); a refused patch leaves slot 1 erased. */
#include <string.h>

#include "board.h"
#include "defects.h"
#include "delta_upload.h"
#include "flash_stream.h"
#include "rd_sha256.h"
#include "rdelta.h"
#include "slots.h"
#include "smp.h"

#define HASH_LEN 32u
#define MAGIC_SIZE 16u
#define IMG_BLOCK_BUF_SIZE 512u /* Zephyr's upload buffer: what the resume-wrong-offset defect skips */

/* g_img_mgmt_state: the upload in progress */
static struct {
    int open, delta;
    uint32_t size, off;
    uint8_t sha[HASH_LEN];
    uint32_t sha_len;
    flash_stream_t stream;
} up;

int img_translate_v1(int rc)
{
    switch (rc) {
    case IMG_NO_IMAGE:
    case IMG_NO_TLVS:
        return MGMT_ENOENT;
    case IMG_NO_FREE_SLOT:
    case IMG_CURRENT_VERSION_IS_NEWER:
    case IMG_IMAGE_ALREADY_PENDING:
        return MGMT_EBADSTATE;
    case IMG_INVALID_SLOT:
    case IMG_INVALID_OFFSET:
    case IMG_INVALID_LENGTH:
    case IMG_INVALID_IMAGE_HEADER:
    case IMG_INVALID_IMAGE_HEADER_MAGIC:
    case IMG_INVALID_HASH:
        return MGMT_EINVAL;
    default:
        return MGMT_EUNKNOWN;
    }
}

static void put_version(cbor_out_t *out, const image_info_t *info)
{
    /* img_mgmt_ver_str: x.y.z, and .build only when the build number is not 0 */
    char s[48];
    uint32_t parts[4] = {info->major, info->minor, info->revision, info->build};
    unsigned n = 0;
    for (unsigned i = 0; i < (info->build ? 4u : 3u); i++) {
        char digits[10];
        unsigned d = 0;
        uint32_t v = parts[i];
        do {
            digits[d++] = (char)('0' + v % 10u);
            v /= 10u;
        } while (v);
        if (i) {
            s[n++] = '.';
        }
        while (d) {
            s[n++] = digits[--d];
        }
    }
    cbor_tstrn(out, (const uint8_t *)s, n);
}

static void put_flag(cbor_out_t *out, const char *name, int value)
{
    cbor_tstr(out, name);
    cbor_bool(out, value);
}

int img_state_read(const uint8_t *body, uint32_t len, cbor_out_t *out)
{
    (void)body;
    (void)len;
    enum next_boot kind;
    int nbs = slot_next_boot(&kind);
    cbor_map_begin(out);
    cbor_tstr(out, "images");
    cbor_list_begin(out);
    for (int slot = 0; slot < SLOT_COUNT; slot++) {
        image_info_t info;
        if (slot_read_info(slot, &info) != IMG_OK) {
            continue;
        }
        int active = slot == SLOT_ACTIVE;
        int other = !active && nbs != SLOT_ACTIVE; /* slot 1 takes part in the next boot */
        cbor_map_begin(out);
        cbor_tstr(out, "slot");
        cbor_uint(out, (uint32_t)slot);
        cbor_tstr(out, "version");
        put_version(out, &info);
        cbor_tstr(out, "hash");
        cbor_bstr(out, info.hash, HASH_LEN);
        put_flag(out, "bootable", !(info.flags & IMAGE_F_NON_BOOTABLE));
        put_flag(out, "pending", other && kind != NEXT_REVERT);
        put_flag(out, "confirmed", active ? kind != NEXT_REVERT : other && kind == NEXT_REVERT);
        put_flag(out, "active", active);
        put_flag(out, "permanent", other && kind == NEXT_NORMAL);
        cbor_end(out);
    }
    cbor_end(out);
    cbor_tstr(out, "splitStatus");
    cbor_uint(out, 0);
    cbor_end(out);
    return 0;
}

int img_state_write(const uint8_t *body, uint32_t len, cbor_out_t *out)
{
    cbor_field_t f[] = {{.key = "hash", .type = CBOR_BSTR}, {.key = "confirm", .type = CBOR_BOOL}};
    if (cbor_decode_map(body, len, f, 2) < 0) {
        return SMP_RC(MGMT_EINVAL);
    }
    int confirm = f[1].found && f[1].u;
    int slot;
    if (!f[0].found || !f[0].len) {
        if (!confirm) {
            return SMP_GROUP_ERR(IMG_INVALID_HASH); /* a test names its image */
        }
        slot = SLOT_ACTIVE;
    } else if (f[0].len != HASH_LEN) {
        return SMP_GROUP_ERR(IMG_INVALID_HASH);
    } else if ((slot = slot_find_by_hash(f[0].ptr)) < 0) {
        return SMP_GROUP_ERR(IMG_HASH_NOT_FOUND);
    }
    /* the smp-test-is-permanent defect: a test request for a named image marks it permanent */
    int rc = slot_set_next(slot, confirm || RIG_DEFECT_SMP_TEST_IS_PERMANENT);
    return rc ? SMP_GROUP_ERR(rc) : img_state_read(body, len, out);
}

static void close_upload(void)
{
    up.open = 0;
    up.off = 0; /* a stray chunk after the end is told to start over, never that it is done */
}

/* A refused upload leaves nothing behind that could be taken for an image. */
static int refuse(int rc)
{
    flash_stream_discard(&up.stream);
    slot_erase(SLOT_UPLOAD);
    close_upload();
    return SMP_GROUP_ERR(rc);
}

static int slot_sha_matches(uint32_t size)
{
    if (up.sha_len != HASH_LEN || size > slot_size(SLOT_UPLOAD)) {
        return 0;
    }
    rd_sha256_t sha;
    uint8_t got[HASH_LEN];
    rd_sha256_init(&sha);
    rd_sha256_update(&sha, (const uint8_t *)slot_addr(SLOT_UPLOAD), size);
    rd_sha256_final(&sha, got);
    return memcmp(got, up.sha, HASH_LEN) == 0;
}

static void reply_off(cbor_out_t *out, uint32_t off, int with_match, int match)
{
    cbor_map_begin(out);
    cbor_tstr(out, "off");
    cbor_uint(out, off);
    if (with_match) {
        put_flag(out, "match", match);
    }
    cbor_end(out);
}

/* img_mgmt_upload_inspect for the first chunk: an error, 1 to resume the open upload, 0 to begin. */
static int inspect_first(const cbor_field_t *f, int *delta)
{
    const cbor_field_t *data = &f[1], *len = &f[2], *sha = &f[4], *upgrade = &f[5];
    if (data->len < IMAGE_HEADER_SIZE) {
        return SMP_GROUP_ERR(IMG_INVALID_IMAGE_HEADER);
    }
    if (!len->found) {
        return SMP_GROUP_ERR(IMG_INVALID_LENGTH);
    }
    const uint8_t *d = data->ptr;
    *delta = memcmp(d, DELTA_MAGIC, 4) == 0;
    uint32_t magic = (uint32_t)d[0] | (uint32_t)d[1] << 8 | (uint32_t)d[2] << 16 | (uint32_t)d[3] << 24;
    if (!*delta && magic != IMAGE_MAGIC) {
        return SMP_GROUP_ERR(IMG_INVALID_IMAGE_HEADER_MAGIC);
    }
    if (sha->len > HASH_LEN) {
        return SMP_GROUP_ERR(IMG_INVALID_HASH);
    }
    if (sha->len && up.open && sha->len == up.sha_len && memcmp(sha->ptr, up.sha, sha->len) == 0) {
        return 1; /* the same upload again: it goes on where it stopped */
    }
    if (slot_in_use(SLOT_UPLOAD)) {
        return SMP_GROUP_ERR(IMG_NO_FREE_SLOT);
    }
#if RIG_DEFECT_INTERRUPTED_UPLOAD_BLOCKS_SLOT
    /* the defect: what an interrupted upload left (a header, no valid image) is taken for a slot in use */
    image_info_t left;
    if (slot_read_info(SLOT_UPLOAD, &left) != IMG_NO_IMAGE && slot_check_hash(SLOT_UPLOAD) != IMG_OK) {
        return SMP_GROUP_ERR(IMG_NO_FREE_SLOT);
    }
#endif
    /* a patch's result is bounded by the applier (new_capacity) once its header is read */
    if (!*delta && len->u > slot_max_image(SLOT_UPLOAD)) {
        return SMP_GROUP_ERR(IMG_INVALID_IMAGE_TOO_LARGE);
    }
    if (!*delta && upgrade->found && upgrade->u) {
        image_info_t running;
        if (slot_read_info(SLOT_ACTIVE, &running) != IMG_OK) {
            return SMP_GROUP_ERR(IMG_VERSION_GET_FAILED);
        }
        uint32_t new_v = (uint32_t)d[20] << 24 | (uint32_t)d[21] << 16 | (uint32_t)(d[22] | d[23] << 8);
        uint32_t old_v = (uint32_t)running.major << 24 | (uint32_t)running.minor << 16 | running.revision;
        if (new_v <= old_v) {
            return SMP_GROUP_ERR(IMG_CURRENT_VERSION_IS_NEWER);
        }
    }
    return 0;
}

static int write_chunk(const uint8_t *data, uint32_t len, cbor_out_t *out)
{
    int last = up.off + len == up.size;
    if (up.delta) {
        int rc = delta_feed(data, len, last);
        if (rc < 0 || (rc > 0 && last)) {
            return refuse(rc == RDELTA_E_SOURCE ? IMG_INVALID_IMAGE_HEADER : IMG_FLASH_WRITE_FAILED);
        }
    } else if (flash_stream_write(&up.stream, data, len) < 0) {
        return refuse(IMG_FLASH_WRITE_FAILED);
    }
    up.off += len;
    if (!last) {
        reply_off(out, up.off, 0, 0);
        return 0;
    }
    /* flash_img: a stale trailer from an earlier upload must not make this image pending */
    uint32_t trailer = slot_addr(SLOT_UPLOAD) + slot_size(SLOT_UPLOAD) - MAGIC_SIZE - 2u * RIG_MAX_ALIGN;
    if (flash_stream_flush(&up.stream) < 0 || flash_stream_erase_at(&up.stream, trailer) < 0) {
        return refuse(IMG_FLASH_WRITE_FAILED);
    }
    int match;
    if (up.delta) {
        /* the applier checked the new image's SHA-256; MCUboot's own hash must hold as well */
        if (slot_check_hash(SLOT_UPLOAD) != IMG_OK) {
            return refuse(IMG_INVALID_HASH);
        }
        match = 1;
    } else {
        match = RIG_DEFECT_SMP_MATCH_ALWAYS || slot_sha_matches(up.size);
    }
    reply_off(out, up.off, 1, match);
    close_upload();
    return 0;
}

int img_upload(const uint8_t *body, uint32_t len, cbor_out_t *out)
{
    cbor_field_t f[] = {
        {.key = "off", .type = CBOR_U32},  {.key = "data", .type = CBOR_BSTR}, {.key = "len", .type = CBOR_U32},
        {.key = "image", .type = CBOR_U32}, {.key = "sha", .type = CBOR_BSTR}, {.key = "upgrade", .type = CBOR_BOOL},
    };
    if (cbor_decode_map(body, len, f, 6) < 0) {
        return SMP_RC(MGMT_EINVAL);
    }
    const cbor_field_t *off = &f[0], *data = &f[1];
    if (!off->found) {
        close_upload();
        return SMP_GROUP_ERR(IMG_INVALID_OFFSET);
    }
    if (off->u) {
        if (!up.open || off->u != up.off) {
            reply_off(out, up.off, 0, 0); /* not where we are: say where to go on */
            return 0;
        }
        if (data->len > up.size - up.off) {
            return refuse(IMG_INVALID_IMAGE_DATA_OVERRUN);
        }
        return write_chunk(data->ptr, data->len, out);
    }
    int delta = 0;
    int rc = inspect_first(f, &delta);
    if (rc == 1) {
        if (RIG_DEFECT_RESUME_WRONG_OFFSET && up.size - up.off > IMG_BLOCK_BUF_SIZE) {
            up.off += IMG_BLOCK_BUF_SIZE; /* the defect: the next chunk's bytes land a buffer early */
        }
        reply_off(out, up.off, 0, 0);
        return 0;
    }
    if (rc) {
        close_upload();
        return rc;
    }
    up.open = 1;
    up.delta = delta;
    up.size = f[2].u;
    up.off = 0;
    up.sha_len = f[4].found ? f[4].len : 0;
    memcpy(up.sha, f[4].ptr, up.sha_len);
    flash_stream_open(&up.stream, slot_addr(SLOT_UPLOAD), slot_size(SLOT_UPLOAD));
    if (!delta && up.sha_len == HASH_LEN && memcmp((const uint8_t *)slot_addr(SLOT_UPLOAD), data->ptr,
                                                   IMAGE_HEADER_SIZE) == 0 && slot_sha_matches(up.size)) {
        reply_off(out, up.size, 1, 1); /* already there (an earlier upload finished): nothing to send */
        close_upload();
        return 0;
    }
    if (data->len > up.size) {
        return refuse(IMG_INVALID_IMAGE_DATA_OVERRUN);
    }
    if (delta) {
        delta_start(&up.stream);
    }
    return write_chunk(data->ptr, data->len, out);
}

int img_erase(const uint8_t *body, uint32_t len, cbor_out_t *out)
{
    cbor_field_t f[] = {{.key = "slot", .type = CBOR_U32}};
    if (cbor_decode_map(body, len, f, 1) < 0) {
        return SMP_RC(MGMT_EINVAL);
    }
    uint32_t slot = f[0].found ? f[0].u : SLOT_UPLOAD;
    image_info_t info;
    if (slot >= SLOT_COUNT) {
        return SMP_GROUP_ERR(IMG_INVALID_SLOT);
    }
    if (slot_read_info((int)slot, &info) == IMG_OK && slot_in_use((int)slot)) {
        return SMP_GROUP_ERR(IMG_NO_FREE_SLOT);
    }
    close_upload();
    int rc = slot_erase((int)slot);
    if (rc) {
        return SMP_GROUP_ERR(rc);
    }
    cbor_map_begin(out);
    cbor_end(out);
    return 0;
}
