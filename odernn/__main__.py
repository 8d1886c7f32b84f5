"""``python -m odernn``: the same command line as ``odernn``."""

from odernn.cli.app import main

if __name__ == "__main__":
    main()
