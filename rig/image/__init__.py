"""Firmware image formats: MCUboot images and trailers, ESP-IDF images and tables, flash layouts."""
