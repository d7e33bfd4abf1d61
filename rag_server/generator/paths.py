"""Where the packaged generator checkpoint lives."""

from __future__ import annotations

from pathlib import Path

PACKAGED_CHECKPOINT = Path(__file__).resolve().parent / "checkpoints" / "generator.pt"
"""The checkpoint shipped with the package (``rag-server train`` writes it here by default)."""
