"""The ESP32: its spec table, eFuse/register model, ROM boot output, image loader, firmware."""
