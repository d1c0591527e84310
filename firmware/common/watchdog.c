/* The independent watchdog (IWDG), the same block on both parts; only its clock differs. */
#include "board.h"
#include "chip.h"

#define WATCHDOG_MS 2000u
#define IWDG_PRESCALER_64 4u
#define IWDG_KEY_START 0xCCCCu
#define IWDG_KEY_UNLOCK 0x5555u
#define IWDG_KEY_FEED 0xAAAAu

_Static_assert(WATCHDOG_MS * (CHIP_LSI_HZ / 1000u) / 64u <= 0xFFFu, "IWDG reload value exceeds 12 bits");

void board_watchdog_start(void)
{
    IWDG_KR = IWDG_KEY_START; /* starts the LSI too; from here only a reset stops the watchdog */
    IWDG_KR = IWDG_KEY_UNLOCK;
    IWDG_PR = IWDG_PRESCALER_64;
    IWDG_RLR = WATCHDOG_MS * (CHIP_LSI_HZ / 1000u) / 64u;
    while (IWDG_SR != 0u) { /* prescaler and reload updates cross into the LSI domain */
    }
    IWDG_KR = IWDG_KEY_FEED;
}

void board_watchdog_feed(void) { IWDG_KR = IWDG_KEY_FEED; }
