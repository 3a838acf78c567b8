"""How quantities are written for people, the same in the analyses' sentences and in the report."""
from __future__ import annotations


def format_hz(hz: float) -> str:
    """125 Hz, 1 kHz, 2.5 kHz, 16 kHz."""
    if hz < 1000:
        return f"{hz:.3g} Hz"
    return f"{hz / 1000:.3g} kHz"
