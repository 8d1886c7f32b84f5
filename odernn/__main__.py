"""``python -m odernn``: the same command line as ``odernn``."""

try:
    from odernn.cli.entry import main
except KeyboardInterrupt:  # a Ctrl-C while the entry point itself is imported
    import os
    import sys

    from odernn.interrupt import say_interrupted

    say_interrupted("interrupted before the command started: nothing was written")
    sys.stderr.flush()
    os._exit(130)

if __name__ == "__main__":
    main()
