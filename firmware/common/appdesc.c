/* The descriptor a virtual board reads to behave as this binary would; filled from -D defines. */
#include "rig_app.h"
#include "rig_layout.h"

__attribute__((section(".rig_appdesc"), used)) const struct rig_app_descriptor rig_app_descriptor = {
    .magic = {'R', 'I', 'G', 'D'},
    .format = 1,
    .variant = RIG_VARIANT_CODE,
    .fault = RIG_FAULT,
    .reserved = 0,
    .major = RIG_VERSION_MAJOR,
    .minor = RIG_VERSION_MINOR,
    .revision = RIG_VERSION_REVISION,
    .build = RIG_VERSION_BUILD,
    .name = "rig-ref",
};
