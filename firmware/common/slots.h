/* The two MCUboot slots as Zephyr's img_mgmt sees them (swap-using-move, one image): the image
 * header and TLVs read straight from flash, the trailers of both slots, and MCUboot's
 * boot_set_next / boot_set_confirmed writes. Slot 0 runs; uploads go to slot 1. Addresses come
 * from rig_layout.h. */
#ifndef RIG_SLOTS_H
#define RIG_SLOTS_H

#include <stdint.h>

#define SLOT_COUNT 2
#define SLOT_ACTIVE 0
#define SLOT_UPLOAD 1
#define IMAGE_MAGIC 0x96F3B83Du
#define IMAGE_HEADER_SIZE 32u
#define IMAGE_F_NON_BOOTABLE 0x10u

/* img_mgmt_err_code_t (Zephyr's img_mgmt.h) */
enum img_err {
    IMG_OK = 0, IMG_UNKNOWN = 1, IMG_NO_IMAGE = 3, IMG_NO_TLVS = 4, IMG_INVALID_TLV = 5,
    IMG_TLV_MULTIPLE_HASHES_FOUND = 6, IMG_TLV_INVALID_SIZE = 7, IMG_HASH_NOT_FOUND = 8,
    IMG_NO_FREE_SLOT = 9, IMG_FLASH_READ_FAILED = 11, IMG_FLASH_WRITE_FAILED = 12,
    IMG_FLASH_ERASE_FAILED = 13, IMG_INVALID_SLOT = 14, IMG_FLASH_CONTEXT_NOT_SET = 17,
    IMG_INVALID_OFFSET = 20, IMG_INVALID_LENGTH = 21, IMG_INVALID_IMAGE_HEADER = 22,
    IMG_INVALID_IMAGE_HEADER_MAGIC = 23, IMG_INVALID_HASH = 24, IMG_VERSION_GET_FAILED = 26,
    IMG_CURRENT_VERSION_IS_NEWER = 27, IMG_IMAGE_ALREADY_PENDING = 28, IMG_INVALID_IMAGE_VECTOR_TABLE = 29,
    IMG_INVALID_IMAGE_TOO_LARGE = 30, IMG_INVALID_IMAGE_DATA_OVERRUN = 31,
    IMG_IMAGE_SETTING_TEST_TO_ACTIVE_DENIED = 33,
};

typedef struct {
    uint8_t major, minor;
    uint16_t revision;
    uint32_t build;
    uint32_t flags;
    const uint8_t *hash; /* the SHA256 TLV, in flash */
} image_info_t;

enum next_boot { NEXT_NORMAL, NEXT_TEST, NEXT_REVERT };

uint32_t slot_addr(int slot);
uint32_t slot_size(int slot);
uint32_t slot_max_image(int slot); /* header + payload + TLVs that leave the trailer alone */

int slot_read_info(int slot, image_info_t *info); /* 0 or an img_err */
/* The image's SHA-256 over header, payload and protected TLVs equals its SHA256 TLV: 0 or an img_err. */
int slot_check_hash(int slot);
int slot_next_boot(enum next_boot *kind); /* the slot that boots after the next reset */
int slot_in_use(int slot);
int slot_set_next(int slot, int confirm); /* img_mgmt_set_next_boot_slot: 0 or an img_err */
int slot_erase(int slot);                 /* the whole slot, unless it already reads erased */
int slot_find_by_hash(const uint8_t *hash); /* slot number or -1 */

/* boot_set_confirmed for the running image: 1 when it is (now) permanent, 0 if not. */
int slot_confirm_running(void);

#endif
