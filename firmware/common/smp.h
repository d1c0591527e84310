/* The MCUmgr SMP server (Zephyr's smp.c, os_mgmt and img_mgmt for one image), fed with console
 * bytes. Requests may share a packet and are answered one by one; the first that fails at the
 * SMP layer ends the packet. SMP v1 and v2 headers: v2 group errors go out as
 * {"err": {"group", "rc"}}, translated into an SMP-layer "rc" for a v1 client. */
#ifndef RIG_SMP_H
#define RIG_SMP_H

#include <stdint.h>

#include "cbor.h"

/* mcumgr_err_t */
enum mgmt_err {
    MGMT_EOK = 0, MGMT_EUNKNOWN = 1, MGMT_ENOMEM = 2, MGMT_EINVAL = 3, MGMT_ENOENT = 5,
    MGMT_EBADSTATE = 6, MGMT_EMSGSIZE = 7, MGMT_ENOTSUP = 8, MGMT_ECORRUPT = 9,
    MGMT_UNSUPPORTED_TOO_NEW = 13,
};

#define SMP_GROUP_OS 0u
#define SMP_GROUP_IMAGE 1u

/* A handler's result: 0 (the body is written), an SMP-layer error, or a group error. */
#define SMP_RC(err) (0x100 | (err))
#define SMP_GROUP_ERR(rc) (0x200 | (rc))

typedef int (*smp_handler_t)(const uint8_t *body, uint32_t len, cbor_out_t *out);

/* One console byte; replies go out on the console. */
void smp_rx(uint8_t byte);
/* Milliseconds until a requested reset is due (the reply must leave first), or -1 if none. */
int smp_reset_requested(void);

/* The image group's handlers (img_mgmt.c). */
int img_state_read(const uint8_t *body, uint32_t len, cbor_out_t *out);
int img_state_write(const uint8_t *body, uint32_t len, cbor_out_t *out);
int img_upload(const uint8_t *body, uint32_t len, cbor_out_t *out);
int img_erase(const uint8_t *body, uint32_t len, cbor_out_t *out);
int img_translate_v1(int rc); /* img_mgmt_translate_error_code */

#endif
