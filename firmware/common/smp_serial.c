#include "smp_serial.h"

#include "board.h"

#define LINE_MAX 127u   /* bytes of a line before its newline (MCUMGR_SERIAL_MAX_FRAME) */
#define TX_RAW_LINE 93u /* raw bytes per line: 124 base64 characters + marker + newline = 127 */

static struct {
    uint8_t line[LINE_MAX];
    uint32_t line_len;
    uint8_t line_lost; /* the line outgrew LINE_MAX: dropped up to its newline */
    uint8_t frame[SMP_NETBUF_SIZE];
    uint32_t frame_len; /* decoded bytes so far, the length field included */
    uint8_t in_frame;
} rx;

static uint16_t crc16_xmodem(const uint8_t *p, uint32_t len)
{
    uint16_t crc = 0;
    while (len--) {
        crc ^= (uint16_t)(*p++ << 8);
        for (unsigned k = 0; k < 8; k++) {
            crc = (uint16_t)(crc & 0x8000u ? (uint32_t)(crc << 1) ^ 0x1021u : (uint32_t)(crc << 1));
        }
    }
    return crc;
}

static int b64_value(uint8_t c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Strict base64 (whole quads, padding only at the end) appended to the frame; -1 if invalid or
 * if it does not fit. */
static int b64_append(const uint8_t *s, uint32_t len)
{
    if (len % 4u) {
        return -1;
    }
    for (uint32_t i = 0; i < len; i += 4) {
        int v[4];
        unsigned pad = 0;
        for (unsigned k = 0; k < 4; k++) {
            if (s[i + k] == '=' && i + 4 == len && k >= 2) {
                v[k] = 0;
                pad++;
            } else if (pad || (v[k] = b64_value(s[i + k])) < 0) {
                return -1; /* a character after padding, or not base64 */
            }
        }
        uint32_t quad = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        if (rx.frame_len + 3u - pad > SMP_NETBUF_SIZE) {
            return -1;
        }
        rx.frame[rx.frame_len++] = (uint8_t)(quad >> 16);
        if (pad < 2) rx.frame[rx.frame_len++] = (uint8_t)(quad >> 8);
        if (pad < 1) rx.frame[rx.frame_len++] = (uint8_t)quad;
    }
    return 0;
}

static uint32_t line_done(uint8_t **packet)
{
    uint8_t *l = rx.line;
    uint32_t n = rx.line_len;
    if (n && l[n - 1] == '\r') {
        n--;
    }
    if (n < 2) {
        return 0;
    }
    if (l[0] == 0x06 && l[1] == 0x09) {
        rx.in_frame = 1;
        rx.frame_len = 0;
    } else if (l[0] != 0x04 || l[1] != 0x14) {
        return 0; /* console text: leaves a frame in progress alone */
    } else if (!rx.in_frame) {
        return 0; /* a continuation with no frame begun */
    }
    if (b64_append(l + 2, n - 2) < 0 || rx.frame_len < 2) {
        rx.in_frame = 0;
        return 0;
    }
    uint32_t expected = (uint32_t)rx.frame[0] << 8 | rx.frame[1]; /* packet + CRC */
    if (rx.frame_len - 2 < expected) {
        return 0;
    }
    rx.in_frame = 0;
    if (rx.frame_len - 2 > expected || expected < 2 || crc16_xmodem(rx.frame + 2, expected) != 0) {
        return 0;
    }
    *packet = rx.frame + 2;
    return expected - 2;
}

uint32_t smp_serial_rx(uint8_t byte, uint8_t **packet)
{
    if (byte == 0x06 || byte == 0x04) {
        /* base64 never holds these: a frame marker starts a new line wherever it comes */
        rx.line_len = 0;
        rx.line_lost = 0;
    }
    if (byte == '\n') {
        uint32_t got = rx.line_lost ? 0 : line_done(packet);
        rx.line_len = 0;
        rx.line_lost = 0;
        return got;
    }
    if (rx.line_len < LINE_MAX) {
        rx.line[rx.line_len++] = byte;
    } else {
        rx.line_lost = 1;
    }
    return 0;
}

static const char b64_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void smp_serial_tx(const uint8_t *packet, uint32_t len)
{
    uint16_t crc = crc16_xmodem(packet, len);
    uint32_t total = len + 4; /* length field, packet, CRC */
    uint32_t pos = 0;
    while (pos < total) {
        board_putc(pos ? 0x04 : 0x06);
        board_putc(pos ? 0x14 : 0x09);
        uint32_t end = pos + TX_RAW_LINE < total ? pos + TX_RAW_LINE : total;
        while (pos < end) {
            uint32_t quad = 0;
            unsigned n = 0;
            for (; n < 3 && pos < end; n++, pos++) {
                uint8_t b;
                if (pos < 2) {
                    b = (uint8_t)((len + 2) >> (pos ? 0 : 8));
                } else if (pos < len + 2) {
                    b = packet[pos - 2];
                } else {
                    b = (uint8_t)(crc >> (pos == len + 2 ? 8 : 0));
                }
                quad |= (uint32_t)b << (16 - 8 * n);
            }
            for (unsigned k = 0; k < 4; k++) {
                board_putc(k <= n ? b64_chars[(quad >> (18 - 6 * k)) & 0x3Fu] : '=');
            }
        }
        board_putc('\n');
    }
}
