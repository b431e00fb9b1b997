"""Pydantic models of every request body the collector accepts."""
