"""Data: dataset specs, the systems, the integrators, simulation, the HDF5 store."""
