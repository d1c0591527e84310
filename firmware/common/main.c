/* rig reference test application: boot banner, watchdog, health check, MCUboot confirm, and an
 * MCUmgr SMP server on the console that takes updates (smp.c, img_mgmt.c).
 *
 * The console lines are the contract of docs/console.md; the virtual boards print the same ones.
 * RIG_FAULT (0 none, 1 crash-on-boot, 2 hang, 3 no-confirm, 4 fail-health, as in
 * rig/image/appdesc.py) turns this one source into the bad firmware that rollback tests need.
 * Flash addresses come from rig_layout.h, which rig.build generates from rig/image/layouts.py. */
#include <stdint.h>
#include <string.h>

#include "board.h"
#include "console.h"
#include "cortexm.h"
#include "defects.h"
#include "rig_app.h"
#include "rig_layout.h"
#include "slots.h"
#include "smp.h"

#define HEALTH_SETTLE_MS 300u /* let the clocks, UART and watchdog run before judging them */
#define ALIVE_PERIOD_MS 1000u
#define BOOTS_MAGIC 0x52424F54u /* "RBOT" */

static const char *const fault_names[] = {"none", "crash-on-boot", "hang", "no-confirm", "fail-health"};
static const char *const reset_names[] = {
    [RESET_POWER_ON] = "power-on", [RESET_PIN] = "pin", [RESET_WATCHDOG] = "watchdog",
    [RESET_SOFTWARE] = "software", [RESET_BROWNOUT] = "brownout",
};

/* Survives a reset (the startup code neither copies nor zeroes .noinit) but not a power cut:
 * RAM then holds noise, which the magic and the inverted copy reject. */
static struct {
    uint32_t magic;
    uint32_t count;
    uint32_t inverted;
} boots __attribute__((section(".noinit")));

volatile uint32_t rig_ticks_ms;

void SysTick_Handler(void) { rig_ticks_ms += RIG_TICK_MS; }

static void put(const char *s)
{
    while (*s) {
        board_putc(*s++);
    }
}

static void put_uint(uint32_t v)
{
    char digits[10];
    unsigned n = 0;
    do {
        digits[n++] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v);
    while (n) {
        board_putc(digits[--n]);
    }
}

static uint32_t count_boot(enum reset_cause reset)
{
    int cold = reset == RESET_POWER_ON || reset == RESET_BROWNOUT; /* RAM content was lost */
    if (cold || boots.magic != BOOTS_MAGIC || boots.inverted != ~boots.count) {
        boots.count = 0;
    }
    boots.magic = BOOTS_MAGIC;
    boots.count++;
    boots.inverted = ~boots.count;
    return boots.count;
}

/* Console input to the SMP server; a reset it was asked for comes once the reply has left. */
static void serve(void)
{
    int c;
    while ((c = console_getc()) >= 0) {
        smp_rx((uint8_t)c);
    }
    int delay = smp_reset_requested();
    if (delay >= 0) {
        uint32_t start = rig_ticks_ms;
        while (rig_ticks_ms - start < (uint32_t)delay) {
            board_watchdog_feed();
            console_idle();
        }
        board_console_drain();
        system_reset();
    }
}

/* Sleeps between interrupts (SysTick, console bytes) and serves the console. */
static void wait_ms(uint32_t ms)
{
    uint32_t start = rig_ticks_ms;
    while (rig_ticks_ms - start < ms) {
        board_watchdog_feed();
        serve();
        console_idle();
    }
}

/* What this app can check about itself on any board: time runs, its own descriptor reads back
 * from flash intact, and a RAM pattern holds. */
static int healthy(void)
{
    static volatile uint32_t pattern[8];
    uint32_t before = rig_ticks_ms;
    wait_ms(HEALTH_SETTLE_MS);
    int ok = rig_ticks_ms - before >= HEALTH_SETTLE_MS;
    ok = ok && memcmp(rig_app_descriptor.magic, "RIGD", 4) == 0;
    ok = ok && rig_app_descriptor.variant == RIG_VARIANT_CODE;
    for (unsigned i = 0; i < 8; i++) {
        pattern[i] = 0xA5A5A5A5u ^ (i * 0x01010101u);
    }
    for (unsigned i = 0; i < 8; i++) {
        ok = ok && pattern[i] == (0xA5A5A5A5u ^ (i * 0x01010101u));
    }
    return ok && RIG_FAULT != RIG_FAULT_FAIL_HEALTH;
}

int main(void)
{
    board_init();
    enum reset_cause reset = board_reset_cause();
    uint32_t count = count_boot(reset);
    if (!RIG_DEFECT_WATCHDOG_NEVER_BITES) {
        board_watchdog_start();
    }

    put("rig: boot variant=" RIG_VARIANT_NAME " version=");
    put_uint(rig_app_descriptor.major);
    put(".");
    put_uint(rig_app_descriptor.minor);
    put(".");
    put_uint(rig_app_descriptor.revision);
    put("+");
    put_uint(rig_app_descriptor.build);
    put(" slot=0 reset="); /* MCUboot swaps the image into the primary slot: it always runs from 0 */
    put(reset_names[reset]);
    put(" boots=");
    put_uint(count);
    put(" fault=");
    put(fault_names[RIG_FAULT]);
    put("\r\n");

    if (RIG_FAULT == RIG_FAULT_CRASH_ON_BOOT) {
        __asm volatile("udf #0"); /* undefined instruction: HardFault on M0+, escalated on M7 */
    }
    if (RIG_FAULT == RIG_FAULT_HANG) {
        for (;;) { /* no feeding: the independent watchdog resets the part */
        }
    }

    console_rx_start();
    if (RIG_DEFECT_CONFIRM_BEFORE_HEALTH && RIG_FAULT != RIG_FAULT_NO_CONFIRM && slot_confirm_running()) {
        put("rig: confirmed\r\n");
    }
    int ok = healthy();
    put(ok ? "rig: health ok\r\n" : "rig: health fail\r\n");
    /* fail-health and no-confirm keep running unconfirmed: the next reset, whatever causes it,
     * makes MCUboot revert to the previous image. */
    if (!RIG_DEFECT_CONFIRM_BEFORE_HEALTH && ok && RIG_FAULT != RIG_FAULT_NO_CONFIRM && slot_confirm_running()) {
        put("rig: confirmed\r\n");
    }

    uint32_t start = rig_ticks_ms;
    uint32_t next = ALIVE_PERIOD_MS;
    for (;;) {
        board_watchdog_feed();
        serve();
        uint32_t up = rig_ticks_ms - start;
        if (up >= next) {
            put("rig: alive uptime=");
            put_uint(up / 1000u);
            put("\r\n");
            next += ALIVE_PERIOD_MS;
        }
        console_idle();
    }
}

void HardFault_Handler(void)
{
    put("rig: hardfault\r\n");
    system_reset();
}
