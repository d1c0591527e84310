/* The app descriptor (rig/image/appdesc.py) as the C struct the linker places at offset 0x400. */
#ifndef RIG_APP_H
#define RIG_APP_H

#include <stdint.h>

#define RIG_FAULT_NONE 0
#define RIG_FAULT_CRASH_ON_BOOT 1
#define RIG_FAULT_HANG 2
#define RIG_FAULT_NO_CONFIRM 3
#define RIG_FAULT_FAIL_HEALTH 4

#ifndef RIG_FAULT
#error "RIG_FAULT must be defined (rig build passes -DRIG_FAULT=0..4)"
#endif

struct rig_app_descriptor {
    char magic[4]; /* "RIGD" */
    uint8_t format;
    uint8_t variant;
    uint8_t fault;
    uint8_t reserved;
    uint8_t major;
    uint8_t minor;
    uint16_t revision;
    uint32_t build;
    char name[16];
};

_Static_assert(sizeof(struct rig_app_descriptor) == 32, "rig app descriptor is 32 bytes");

extern const struct rig_app_descriptor rig_app_descriptor;

#endif
