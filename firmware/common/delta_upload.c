#include "delta_upload.h"

#include <string.h>

#include "board.h"
#include "rdelta.h"
#include "slots.h"

#define PAGE_SIZE 256u   /* the applier's output unit: a whole number of write units on both parts */
#define STACK_WORDS 256u /* 1 KiB: rdelta_apply with SHA-256, the codec, the flash callbacks, an IRQ */
#define STACK_PAINT 0xC5

enum { IDLE, RUNNING, DONE };

/* All of the applier's RAM in one object, so its share is one symbol's size (python -m bench). */
static struct {
    uint64_t stack[STACK_WORDS / 2]; /* first (offset 0), 8-byte aligned as the AAPCS wants */
    rdelta_t st;
    rdelta_io_t io;
    uint8_t page[PAGE_SIZE];
    uint32_t *sp, *caller_sp;
    const uint8_t *feed;
    uint32_t feed_len;
    int eof, state, result;
    flash_stream_t *out;
} delta;

/* Save r4-r11 and lr on the current stack, store sp in *save, switch to load and restore the
 * same from there. Thumb-1 only, so it runs on the M0+ as on the M7 (no FPU state: soft float). */
__attribute__((naked, noinline)) static void coro_switch(uint32_t **save, uint32_t *load)
{
    (void)save;
    (void)load;
    __asm volatile("push {r4-r7, lr}\n"
                   "mov r2, r8\n"
                   "mov r3, r9\n"
                   "push {r2, r3}\n"
                   "mov r2, r10\n"
                   "mov r3, r11\n"
                   "push {r2, r3}\n"
                   "mov r2, sp\n"
                   "str r2, [r0]\n"
                   "mov sp, r1\n"
                   "pop {r2, r3}\n"
                   "mov r10, r2\n"
                   "mov r11, r3\n"
                   "pop {r2, r3}\n"
                   "mov r8, r2\n"
                   "mov r9, r3\n"
                   "pop {r4-r7, pc}\n");
}

static void yield(void) { coro_switch(&delta.sp, delta.caller_sp); }

static int read_patch(void *ctx, uint32_t offset, uint8_t *buf, uint32_t len)
{
    (void)ctx;
    (void)offset; /* always sequential */
    while (!delta.feed_len) {
        if (delta.eof) {
            return 0;
        }
        yield();
    }
    uint32_t n = len < delta.feed_len ? len : delta.feed_len;
    memcpy(buf, delta.feed, n);
    delta.feed += n;
    delta.feed_len -= n;
    return (int)n;
}

static int read_old(void *ctx, uint32_t offset, uint8_t *buf, uint32_t len)
{
    (void)ctx;
    if (offset > slot_size(SLOT_ACTIVE) || len > slot_size(SLOT_ACTIVE) - offset) {
        return -1;
    }
    board_watchdog_feed(); /* hashing the whole old slot takes a while on the small part */
    memcpy(buf, (const uint8_t *)(slot_addr(SLOT_ACTIVE) + offset), len);
    return 0;
}

static int write_new(void *ctx, uint32_t offset, const uint8_t *buf, uint32_t len)
{
    (void)ctx;
    (void)offset; /* pages come in order: resume_at is 0, nothing is skipped */
    return flash_stream_write(delta.out, buf, len);
}

static void applier(void)
{
    delta.result = rdelta_apply(&delta.st, &delta.io, 0);
    delta.state = DONE;
    for (;;) {
        yield();
    }
}

void delta_start(flash_stream_t *out)
{
    delta.out = out;
    delta.io = (rdelta_io_t){read_patch, read_old, write_new, 0, delta.page, PAGE_SIZE, slot_max_image(SLOT_UPLOAD)};
    /* A fresh frame for coro_switch to pop: r10, r11, r8, r9, r4-r7, then pc = the applier. */
    /* Painted, so a debugger (or a test) sees how deep the applier went: STACK_PAINT never written. */
    memset(delta.stack, STACK_PAINT, sizeof delta.stack);
    uint32_t *top = (uint32_t *)(delta.stack + STACK_WORDS / 2);
    delta.sp = top - 9;
    memset(delta.sp, 0, 8 * sizeof(uint32_t));
    delta.sp[8] = (uint32_t)applier;
    delta.state = RUNNING;
}

int delta_feed(const uint8_t *data, uint32_t len, int eof)
{
    if (delta.state != RUNNING) {
        return RDELTA_E_ARG;
    }
    delta.feed = data;
    delta.feed_len = len;
    delta.eof = eof;
    coro_switch(&delta.caller_sp, delta.sp);
    if (delta.state == RUNNING) {
        return 1;
    }
    delta.state = IDLE;
    if (delta.result == RDELTA_OK && delta.feed_len) {
        return RDELTA_E_HEADER; /* bytes after the end the container declares */
    }
    return delta.result;
}
