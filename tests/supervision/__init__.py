"""Tests of asyncotp.supervision: child specs, restart rules, supervisors, applications."""
