"""``python -m odernn``: the same command line as ``odernn``."""

try:
    from odernn.cli.entry import main
except KeyboardInterrupt:  # a Ctrl-C while the entry point itself is imported
    import os
    import sys

    print("interrupted before the command started: nothing was written", file=sys.stderr)
    os._exit(130)

if __name__ == "__main__":
    main()
