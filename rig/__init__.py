"""rig: a hardware-in-the-loop lab for OTA updates of ESP32 and STM32 fleets."""

__version__ = "0.1.0"
