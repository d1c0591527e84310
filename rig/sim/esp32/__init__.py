"""The virtual ESP32: serial ROM loader (with esptool's flasher stub protocol), eFuses, and the
ESP-IDF second-stage bootloader. Reached only through the console, the flash file and eFuse file."""
