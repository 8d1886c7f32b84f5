"""The ``odernn`` command line, installed as ``odernn.cli``: a thin layer over the library."""
