"""Deterministic actor export, full-int8 conversion, checks and C code generation."""
