"""``python -m odernn``: the same command line as ``odernn``."""

from odernn.cli.entry import main

if __name__ == "__main__":
    main()
