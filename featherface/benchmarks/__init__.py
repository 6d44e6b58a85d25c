"""Measurements (speed, memory, accuracy against peers). A leaf: nothing in the library imports
it; the ``featherface benchmark`` command and ``benchmarks/run.sh`` drive it."""
