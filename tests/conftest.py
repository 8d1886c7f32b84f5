"""Test-wide settings: CPU only, headless plots, quiet progress."""

from __future__ import annotations

import os

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # the default run is CPU-only
os.environ.setdefault("MPLBACKEND", "Agg")
