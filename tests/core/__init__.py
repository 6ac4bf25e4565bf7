"""Tests of asyncotp._core: processes, node, links, monitors, registry, timers, deadlines."""
