"""The expert-action teacher: a transformer that sees only what a logger records.

It predicts what an expert rider would do over the next second (throttle, brake, lean,
speed) from the last two seconds of telemetry and the track ahead, plus the time an expert
takes over the next :data:`~motocoach.training.teacher.features.SECTOR_M` metres. See
docs/teacher.md.
"""
