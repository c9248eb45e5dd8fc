"""Test harness shared by session-buddy's tests; not part of the shipped package."""
