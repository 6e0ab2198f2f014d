"""The edge firmware: a MicroPython bridge between the box and the printer that counts and attests the work."""
