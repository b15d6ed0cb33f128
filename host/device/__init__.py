"""Talking to a unit: serial link, identify, model updates, firmware flashing, audit log."""
