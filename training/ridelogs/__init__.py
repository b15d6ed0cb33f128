"""Real ride logs: import (RaceChrono, AiM, expert-data CSV), telemetry, quality, Minari, export.

See docs/ride-logs.md. The replay through the unit is :mod:`motocoach.replay`.
"""
