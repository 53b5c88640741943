"""Paired bootstrap of an accuracy difference; one implementation, shared with stored evaluations."""

from __future__ import annotations

from model_store.evaluations import paired_interval

__all__ = ["paired_interval"]
