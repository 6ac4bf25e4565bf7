"""Tests of asyncotp.actors: GenServer and Agent."""
