#include "smp.h"

#include <string.h>

#include "smp_serial.h"

#define HDR_SIZE 8u
#define OP_READ 0u
#define OP_WRITE 2u
#define VERSION_2 1u
#define OS_ECHO 0u
#define OS_RESET 5u
#define OS_MCUMGR_PARAMS 6u
#define OS_BOOTLOADER_INFO 8u
#define IMG_STATE 0u
#define IMG_UPLOAD 1u
#define IMG_ERASE 5u
#define MCUBOOT_MODE_SWAP_USING_MOVE 3u
#define OS_ERR_QUERY_YIELDS_NO_ANSWER 3
#define RESET_DELAY_MS 250 /* CONFIG_MCUMGR_GRP_OS_RESET_MS: the reply leaves before the reset */

static uint8_t reply[SMP_NETBUF_SIZE];
static int reset_pending;

int smp_reset_requested(void) { return reset_pending ? RESET_DELAY_MS : -1; }

static int os_echo(const uint8_t *body, uint32_t len, cbor_out_t *out)
{
    cbor_field_t f[] = {{.key = "d", .type = CBOR_TSTR}};
    if (cbor_decode_map(body, len, f, 1) < 0) {
        return SMP_RC(MGMT_EINVAL);
    }
    cbor_map_begin(out);
    cbor_tstr(out, "r");
    cbor_tstrn(out, f[0].ptr, f[0].found ? f[0].len : 0);
    cbor_end(out);
    return 0;
}

static int os_reset(const uint8_t *body, uint32_t len, cbor_out_t *out)
{
    cbor_field_t f[] = {{.key = "force", .type = CBOR_BOOL}}; /* no reset hooks: force changes nothing */
    if (cbor_decode_map(body, len, f, 1) < 0) {
        return SMP_RC(MGMT_EINVAL);
    }
    reset_pending = 1;
    cbor_map_begin(out);
    cbor_end(out);
    return 0;
}

static int os_params(const uint8_t *body, uint32_t len, cbor_out_t *out)
{
    (void)body;
    (void)len;
    cbor_map_begin(out);
    cbor_tstr(out, "buf_size");
    cbor_uint(out, SMP_NETBUF_SIZE);
    cbor_tstr(out, "buf_count");
    cbor_uint(out, 1);
    cbor_end(out);
    return 0;
}

static int os_bootloader_info(const uint8_t *body, uint32_t len, cbor_out_t *out)
{
    cbor_field_t f[] = {{.key = "query", .type = CBOR_TSTR}};
    if (cbor_decode_map(body, len, f, 1) < 0) {
        return SMP_RC(MGMT_EINVAL);
    }
    cbor_map_begin(out);
    if (!f[0].found) {
        cbor_tstr(out, "bootloader");
        cbor_tstr(out, "MCUboot");
    } else if (f[0].len == 4 && memcmp(f[0].ptr, "mode", 4) == 0) {
        cbor_tstr(out, "mode");
        cbor_uint(out, MCUBOOT_MODE_SWAP_USING_MOVE);
        cbor_tstr(out, "no-downgrade"); /* MCUboot refuses images below its security counter */
        cbor_bool(out, 1);
    } else {
        return SMP_RC(OS_ERR_QUERY_YIELDS_NO_ANSWER);
    }
    cbor_end(out);
    return 0;
}

struct handler {
    uint8_t group, cmd;
    smp_handler_t read, write;
};

static const struct handler handlers[] = {
    {SMP_GROUP_OS, OS_ECHO, os_echo, os_echo},
    {SMP_GROUP_OS, OS_RESET, 0, os_reset},
    {SMP_GROUP_OS, OS_MCUMGR_PARAMS, os_params, 0},
    {SMP_GROUP_OS, OS_BOOTLOADER_INFO, os_bootloader_info, 0},
    {SMP_GROUP_IMAGE, IMG_STATE, img_state_read, img_state_write},
    {SMP_GROUP_IMAGE, IMG_UPLOAD, 0, img_upload},
    {SMP_GROUP_IMAGE, IMG_ERASE, 0, img_erase},
};

static void send(const uint8_t *req, uint8_t version, const cbor_out_t *out)
{
    uint32_t len = (uint32_t)(out->p - (reply + HDR_SIZE));
    reply[0] = (uint8_t)((req[0] & 7u) == OP_READ ? 1u : 3u) | (uint8_t)(version << 3); /* READ_RSP, WRITE_RSP */
    reply[1] = 0;
    reply[2] = (uint8_t)(len >> 8);
    reply[3] = (uint8_t)len;
    memcpy(reply + 4, req + 4, 4); /* group, sequence, command id */
    smp_serial_tx(reply, HDR_SIZE + len);
}

/* One request: 0 when answered and the packet goes on, -1 when an SMP-layer error ended it. */
static int handle(const uint8_t *req, const uint8_t *body, uint32_t body_len, uint32_t want_len)
{
    uint8_t op = req[0] & 7u, version = (req[0] >> 3) & 3u;
    uint16_t group = (uint16_t)(req[4] << 8 | req[5]);
    cbor_out_t out = {reply + HDR_SIZE, reply + sizeof reply, 0};
    int rc;
    if (body_len < want_len) {
        rc = SMP_RC(MGMT_ECORRUPT);
    } else if (version > VERSION_2) {
        rc = SMP_RC(MGMT_UNSUPPORTED_TOO_NEW);
    } else {
        smp_handler_t h = 0;
        for (unsigned i = 0; i < sizeof handlers / sizeof handlers[0]; i++) {
            if (handlers[i].group == group && handlers[i].cmd == req[7]) {
                h = op == OP_READ ? handlers[i].read : op == OP_WRITE ? handlers[i].write : 0;
            }
        }
        rc = h ? h(body, body_len, &out) : SMP_RC(MGMT_ENOTSUP);
    }
    if (rc & 0x200) {
        if (version < VERSION_2) {
            rc = SMP_RC(group == SMP_GROUP_IMAGE ? img_translate_v1(rc & 0xFF) : MGMT_EUNKNOWN);
        } else {
            out.p = reply + HDR_SIZE;
            out.overflow = 0;
            cbor_map_begin(&out);
            cbor_tstr(&out, "err");
            cbor_map_begin(&out);
            cbor_tstr(&out, "group");
            cbor_uint(&out, group);
            cbor_tstr(&out, "rc");
            cbor_uint(&out, (uint32_t)(rc & 0xFF));
            cbor_end(&out);
            cbor_end(&out);
            rc = 0;
        }
    }
    if (!rc && out.overflow) {
        rc = SMP_RC(MGMT_EMSGSIZE);
    }
    if (rc) {
        out.p = reply + HDR_SIZE;
        out.overflow = 0;
        cbor_map_begin(&out);
        cbor_tstr(&out, "rc");
        cbor_uint(&out, (uint32_t)(rc & 0xFF));
        cbor_end(&out);
    }
    send(req, version > VERSION_2 ? VERSION_2 : version, &out);
    return rc ? -1 : 0;
}

void smp_rx(uint8_t byte)
{
    uint8_t *packet;
    uint32_t len = smp_serial_rx(byte, &packet);
    while (len >= HDR_SIZE) {
        uint32_t want = (uint32_t)packet[2] << 8 | packet[3];
        uint32_t body_len = len - HDR_SIZE < want ? len - HDR_SIZE : want;
        if (handle(packet, packet + HDR_SIZE, body_len, want) < 0) {
            return;
        }
        packet += HDR_SIZE + body_len;
        len -= HDR_SIZE + body_len;
    }
}
