"""odernn: recurrent neural network surrogates of the damped, driven oscillator.

The pipeline, one module per stage: ``systems`` and ``integrators`` simulate
``x'' + eta x' + x = F(t)``; ``store`` writes and reads HDF5 datasets;
``models`` and ``training`` build recurrent surrogates; ``evaluate`` and
``report`` compare them with the integrators.
"""

from __future__ import annotations

__version__ = "0.1.0"
