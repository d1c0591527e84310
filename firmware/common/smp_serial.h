/* MCUmgr's SMP over a console UART, framed as Zephyr's serial transport frames it: a packet
 * travels as base64 of (length u16 BE, packet, CRC16-XMODEM BE) in lines that start with 06 09
 * (first) or 04 14 (continuation) and end with a newline, each at most 127 bytes long. Console
 * text between frames is ignored. */
#ifndef RIG_SMP_SERIAL_H
#define RIG_SMP_SERIAL_H

#include <stdint.h>

/* CONFIG_MCUMGR_TRANSPORT_NETBUF_SIZE: the largest decoded frame (length, packet and CRC). */
#define SMP_NETBUF_SIZE 1024u

/* One received byte in; a complete packet (CRC checked, length and CRC removed) out: returns its
 * length and points *packet at it, or 0 while none is complete. Lines too long, bad base64, a
 * frame larger than the buffer or a bad CRC drop the packet without a word, as Zephyr does. */
uint32_t smp_serial_rx(uint8_t byte, uint8_t **packet);

/* Send one packet, split into lines as Zephyr sends them. */
void smp_serial_tx(const uint8_t *packet, uint32_t len);

#endif
