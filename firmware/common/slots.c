#include "slots.h"

#include <string.h>

#include "board.h"
#include "defects.h"
#include "rd_sha256.h"
#include "rig_layout.h"

#define TLV_INFO_MAGIC 0x6907u
#define TLV_PROT_INFO_MAGIC 0x6908u
#define TLV_SHA256 0x10u
#define HASH_LEN 32u
#define MAGIC_SIZE 16u
#define ALIGN_DOWN(n, a) ((n) / (a) * (a))

enum magic { MAGIC_UNSET, MAGIC_GOOD, MAGIC_BAD };
enum flag { FLAG_UNSET, FLAG_SET, FLAG_BAD };
enum swap { SWAP_NONE = 1, SWAP_TEST = 2, SWAP_PERM = 3, SWAP_REVERT = 4 }; /* BOOT_SWAP_TYPE_*, as stored */

typedef struct {
    enum magic magic;
    enum flag image_ok, copy_done;
} trailer_t;

static const uint8_t trailer_magic[MAGIC_SIZE] = RIG_TRAILER_MAGIC;

uint32_t slot_addr(int slot) { return slot ? RIG_SLOT1_ADDR : RIG_SLOT0_ADDR; }
uint32_t slot_size(int slot) { return slot ? RIG_SLOT1_SIZE : RIG_SLOT0_SIZE; }
uint32_t slot_max_image(int slot) { return slot_size(slot) - RIG_TRAILER_SIZE; }

static const uint8_t *at(int slot, uint32_t off) { return (const uint8_t *)(slot_addr(slot) + off); }
static uint32_t le16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static uint32_t le32(const uint8_t *p) { return le16(p) | le16(p + 2) << 16; }

/* Trailer offsets from the slot's start, as rig/image/trailer.py and MCUboot's bootutil place them. */
static uint32_t magic_off(int slot) { return slot_size(slot) - MAGIC_SIZE; }
static uint32_t image_ok_off(int slot) { return ALIGN_DOWN(magic_off(slot) - RIG_MAX_ALIGN, RIG_MAX_ALIGN); }
static uint32_t copy_done_off(int slot) { return image_ok_off(slot) - RIG_MAX_ALIGN; }
static uint32_t swap_info_off(int slot) { return copy_done_off(slot) - RIG_MAX_ALIGN; }

static enum flag flag_at(int slot, uint32_t off)
{
    uint8_t v = *at(slot, off);
    return v == RIG_ERASED ? FLAG_UNSET : v == RIG_FLAG_SET ? FLAG_SET : FLAG_BAD;
}

static trailer_t trailer_read(int slot)
{
    const uint8_t *m = at(slot, magic_off(slot));
    int erased = 1, good = 1;
    for (unsigned i = 0; i < MAGIC_SIZE; i++) {
        erased = erased && m[i] == RIG_ERASED;
        good = good && m[i] == trailer_magic[i];
    }
    trailer_t t = {erased ? MAGIC_UNSET : good ? MAGIC_GOOD : MAGIC_BAD, flag_at(slot, image_ok_off(slot)),
                   flag_at(slot, copy_done_off(slot))};
    return t;
}

/* boot_swap_type: MCUboot's table, the secondary slot's wishes first. */
static enum swap swap_type(void)
{
    trailer_t p = trailer_read(SLOT_ACTIVE), s = trailer_read(SLOT_UPLOAD);
    if (s.magic == MAGIC_GOOD && s.image_ok == FLAG_UNSET) {
        return SWAP_TEST;
    }
    if (s.magic == MAGIC_GOOD && s.image_ok == FLAG_SET) {
        return SWAP_PERM;
    }
    if (p.magic == MAGIC_GOOD && s.magic == MAGIC_UNSET && p.image_ok == FLAG_UNSET && p.copy_done == FLAG_SET) {
        return SWAP_REVERT;
    }
    return SWAP_NONE;
}

int slot_next_boot(enum next_boot *kind)
{
    switch (swap_type()) {
    case SWAP_TEST:
        *kind = NEXT_TEST;
        return SLOT_UPLOAD;
    case SWAP_PERM:
        *kind = NEXT_NORMAL;
        return SLOT_UPLOAD;
    case SWAP_REVERT:
        *kind = NEXT_REVERT;
        return SLOT_UPLOAD;
    default:
        *kind = NEXT_NORMAL;
        return SLOT_ACTIVE;
    }
}

int slot_in_use(int slot)
{
    enum next_boot kind;
    int nbs = slot_next_boot(&kind);
    if (slot == nbs && (kind == NEXT_REVERT || kind == NEXT_TEST)) {
        return 1;
    }
    if (kind == NEXT_NORMAL && nbs != SLOT_ACTIVE) {
        return 1;
    }
    return slot == SLOT_ACTIVE;
}

/* img_mgmt_read_info: version and flags from the header, the hash from a walk of the TLV areas. */
static int find_hash(int slot, uint32_t *hashed_len, const uint8_t **hash)
{
    uint32_t size = slot_size(slot);
    const uint8_t *h = at(slot, 0);
    uint32_t magic = le32(h);
    if (magic != IMAGE_MAGIC) {
        return magic == RIG_ERASED * 0x01010101u ? IMG_NO_IMAGE : IMG_INVALID_IMAGE_HEADER_MAGIC;
    }
    uint32_t hdr_size = le16(h + 8), prot_size = le16(h + 10), img_size = le32(h + 12);
    if (img_size > size || hdr_size + img_size + 4u > size) {
        return IMG_FLASH_READ_FAILED;
    }
    uint32_t off = hdr_size + img_size;
    *hashed_len = off + prot_size;
    if (le16(at(slot, off)) == TLV_PROT_INFO_MAGIC) {
        off += le16(at(slot, off + 2));
        if (off + 4u > size) {
            return IMG_FLASH_READ_FAILED;
        }
    }
    if (le16(at(slot, off)) != TLV_INFO_MAGIC) {
        return IMG_NO_TLVS;
    }
    uint32_t end = off + le16(at(slot, off + 2));
    if (end > size) {
        return IMG_FLASH_READ_FAILED;
    }
    *hash = 0;
    for (off += 4; off + 4u <= end;) {
        uint32_t kind = le16(at(slot, off)), len = le16(at(slot, off + 2));
        if (kind == 0xFFu && len == 0xFFFFu) {
            return IMG_INVALID_TLV;
        }
        off += 4;
        if (kind != TLV_SHA256 || len != HASH_LEN) {
            off += len;
            continue;
        }
        if (*hash) {
            return IMG_TLV_MULTIPLE_HASHES_FOUND;
        }
        if (off + HASH_LEN > end) {
            return IMG_TLV_INVALID_SIZE;
        }
        *hash = at(slot, off);
        off += HASH_LEN;
    }
    return *hash ? IMG_OK : IMG_HASH_NOT_FOUND;
}

int slot_read_info(int slot, image_info_t *info)
{
    uint32_t hashed;
    int rc = find_hash(slot, &hashed, &info->hash);
    if (rc) {
        return rc;
    }
    const uint8_t *h = at(slot, 0);
    info->flags = le32(h + 16);
    info->major = h[20];
    info->minor = h[21];
    info->revision = (uint16_t)le16(h + 22);
    info->build = le32(h + 24);
    return IMG_OK;
}

int slot_check_hash(int slot)
{
    uint32_t hashed;
    const uint8_t *want;
    int rc = find_hash(slot, &hashed, &want);
    if (rc) {
        return rc;
    }
    if (RIG_DEFECT_SMP_MATCH_ALWAYS) {
        return IMG_OK;
    }
    if (hashed > slot_max_image(slot)) {
        return IMG_INVALID_IMAGE_TOO_LARGE;
    }
    rd_sha256_t sha;
    uint8_t got[HASH_LEN];
    rd_sha256_init(&sha);
    rd_sha256_update(&sha, at(slot, 0), hashed);
    rd_sha256_final(&sha, got);
    return memcmp(got, want, HASH_LEN) ? IMG_INVALID_HASH : IMG_OK;
}

int slot_find_by_hash(const uint8_t *hash)
{
    for (int slot = 0; slot < SLOT_COUNT; slot++) {
        image_info_t info;
        if (slot_read_info(slot, &info) == IMG_OK && memcmp(info.hash, hash, HASH_LEN) == 0) {
            return slot;
        }
    }
    return -1;
}

/* Program `len` bytes (whole write units) at a slot offset. */
static int program(int slot, uint32_t off, const uint8_t *data, uint32_t len)
{
    for (uint32_t i = 0; i < len; i += RIG_WRITE_SIZE) {
        if (board_flash_program(slot_addr(slot) + off + i, data + i)) {
            return IMG_FLASH_WRITE_FAILED;
        }
    }
    return IMG_OK;
}

static int write_flag(int slot, uint32_t off, uint8_t value)
{
    uint8_t unit[RIG_WRITE_SIZE];
    memset(unit, RIG_ERASED, sizeof unit);
    unit[0] = value;
    return program(slot, off, unit, sizeof unit);
}

static int write_magic(int slot)
{
    uint8_t buf[RIG_MAGIC_WRITE_SIZE];
    memset(buf, RIG_ERASED, sizeof buf);
    memcpy(buf + sizeof buf - MAGIC_SIZE, trailer_magic, MAGIC_SIZE);
    return program(slot, slot_size(slot) - sizeof buf, buf, sizeof buf);
}

int slot_confirm_running(void)
{
    trailer_t t = trailer_read(SLOT_ACTIVE);
    if (t.magic == MAGIC_UNSET || (t.magic == MAGIC_GOOD && t.image_ok == FLAG_SET)) {
        return 1; /* flashed directly (no swap), or already confirmed */
    }
    if (t.magic != MAGIC_GOOD || t.image_ok != FLAG_UNSET) {
        return 0; /* a trailer MCUboot would call bad: leave it for the bootloader to judge */
    }
    if (RIG_DEFECT_CONFIRM_NOT_PERSISTED) {
        return 1;
    }
    return write_flag(SLOT_ACTIVE, image_ok_off(SLOT_ACTIVE), RIG_FLAG_SET) == IMG_OK;
}

/* MCUboot's boot_set_next for the secondary slot: magic, image_ok if permanent, swap type. */
static int set_pending(int slot, int permanent)
{
    trailer_t t = trailer_read(slot);
    if (t.magic == MAGIC_GOOD) {
        return IMG_OK; /* already pending */
    }
    if (t.magic == MAGIC_BAD) {
        /* a corrupt secondary cannot be recovered: erased for the next upload (BOOT_EBADIMAGE) */
        slot_erase(slot);
        return IMG_INVALID_IMAGE_HEADER_MAGIC;
    }
    int rc = slot_check_hash(slot);
    if (rc) {
        return rc; /* never ask MCUboot to try an image that is not what its hash says */
    }
    rc = write_magic(slot);
    if (!rc && permanent) {
        rc = write_flag(slot, image_ok_off(slot), RIG_FLAG_SET);
    }
    if (!rc) {
        rc = write_flag(slot, swap_info_off(slot), permanent ? SWAP_PERM : SWAP_TEST);
    }
    return rc;
}

int slot_set_next(int slot, int confirm)
{
    enum next_boot kind;
    int nbs = slot_next_boot(&kind);
    if (!confirm && slot == SLOT_ACTIVE) {
        return IMG_IMAGE_SETTING_TEST_TO_ACTIVE_DENIED;
    }
    if (kind == NEXT_TEST) {
        return !confirm && slot == nbs ? IMG_OK : IMG_IMAGE_ALREADY_PENDING;
    }
    if (kind == NEXT_NORMAL) {
        if (confirm && slot == nbs) {
            return IMG_OK;
        }
        if ((slot == SLOT_ACTIVE && nbs != SLOT_ACTIVE) || (!confirm && slot != SLOT_ACTIVE && slot == nbs)) {
            return IMG_IMAGE_ALREADY_PENDING;
        }
    }
    if (kind == NEXT_REVERT) {
        if (confirm && slot == nbs) {
            return IMG_OK;
        }
        if (!confirm) {
            return IMG_IMAGE_ALREADY_PENDING;
        }
    }
    if (slot == SLOT_ACTIVE) {
        if (trailer_read(SLOT_ACTIVE).magic == MAGIC_BAD) {
            return IMG_INVALID_IMAGE_VECTOR_TABLE;
        }
        return slot_confirm_running() ? IMG_OK : IMG_FLASH_WRITE_FAILED;
    }
    return set_pending(slot, confirm);
}

int slot_erase(int slot)
{
    const uint32_t erased = RIG_ERASED * 0x01010101u;
    for (uint32_t off = 0; off < slot_size(slot); off += RIG_SECTOR_SIZE) {
        const uint32_t *w = (const uint32_t *)(slot_addr(slot) + off);
        uint32_t i = 0;
        while (i < RIG_SECTOR_SIZE / 4u && w[i] == erased) {
            i++;
        }
        if (i < RIG_SECTOR_SIZE / 4u && board_flash_erase(slot_addr(slot) + off)) {
            return IMG_FLASH_ERASE_FAILED;
        }
    }
    return IMG_OK;
}
