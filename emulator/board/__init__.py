"""The board: power, EN and strapping pins, UART, reset wiring, fault hook points."""
