"""Tests of asyncotp.testing, the kit for testing asyncotp systems."""
