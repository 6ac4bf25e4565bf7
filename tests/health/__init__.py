"""Tests of asyncotp.health."""
