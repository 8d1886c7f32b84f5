"""The ``odernn`` typer app and its entry point.

Every command is one library call plus argument parsing and printing. Errors
a user can cause (bad options, specs, files) are printed as one line,
``error: what, where, what is allowed``, with exit code 2; ``--debug`` prints
the traceback before that line (the exit code stays 2).
"""

from __future__ import annotations

import os
import re
import signal
import sys
import traceback
import warnings
from collections.abc import Sequence
from typing import Any

import typer
from typer import main as typer_main

try:  # typer >= 0.22 vendors click
    from typer._click import exceptions as click_errors
except ImportError:  # pragma: no cover - older typer depends on click
    from click import exceptions as click_errors

from odernn import budget
from odernn.errors import Interrupted, OdernnError

ClickException = click_errors.ClickException
NO_ARGS_IS_HELP = getattr(click_errors, "NoArgsIsHelpError", ())
"""A bare ``odernn`` (click >= 8.2; older click prints the help and exits 0 itself)."""
CPU_ALLOCATOR = "DefaultCPUAllocator: can't allocate memory"
"""What torch's RuntimeError says where an allocation on the CPU fails (its MemoryError)."""

app = typer.Typer(
    name="odernn",
    help="Recurrent neural network surrogates of driven oscillators (the linear one "
    "x'' + eta x' + x = F(t), Duffing, Van der Pol, the pendulum) and of measured data: "
    "simulate or import, train, evaluate, export. An error is one line; --debug, anywhere on "
    "the command line, shows its traceback.",
    add_completion=True,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

EXIT_BAD_INPUT = 2
INTERRUPTED = "interrupted: each output is as before the command, or complete (never partial)"


def _version(value: bool) -> None:
    if value:
        from odernn import __version__

        typer.echo(f"odernn {__version__}")
        raise typer.Exit()


@app.callback()
def _options(version: bool = typer.Option(False, "--version", callback=_version,
                                          is_eager=True, help="Print the version and exit.")
             ) -> None:
    """Recurrent neural network surrogates of the damped, driven oscillator."""


def _register_commands() -> None:
    """Import the command modules; each adds its commands to :data:`app`."""
    from odernn.cli import (  # noqa: F401
        demo,
        evaluate,
        export,
        gradients,
        imports,
        simulate,
        train,
    )


NEEDS_TORCH = frozenset(("train", "evaluate", "demo", "gradients", "models", "export"))
"""The commands that load torch."""


def _import_torch() -> None:
    """Import torch with Ctrl-C and SIGTERM held: a KeyboardInterrupt raised inside its C++
    extension's import aborts the process (pybind11 calls std::terminate); held, the signal
    ends the command once the import is done, as at any other moment."""
    from odernn.interrupt import interrupt_guard

    with interrupt_guard() as interrupted:
        import torch  # noqa: F401
    if interrupted():
        raise KeyboardInterrupt


def one_line(exc: BaseException | str) -> str:
    """The message of ``exc`` on one line (HDF5 and torch write theirs over several)."""
    return "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())


def _quiet_h5py(hook):
    """``hook`` (sys.excepthook or sys.unraisablehook) without the errors h5py reports when it
    frees the objects of a file whose write failed (Cython prints them through both)."""
    def from_h5py(tb) -> bool:
        files = [frame.f_code.co_filename for frame, _ in traceback.walk_tb(tb)]
        return bool(files) and all("h5py" in f for f in files)

    def quiet(*args) -> None:
        tb = args[2] if len(args) == 3 else args[0].exc_traceback
        obj = "" if len(args) == 3 else repr(args[0].object)
        if not (from_h5py(tb) or "h5py._objects" in obj):
            hook(*args)

    quiet.odernn = True
    return hook if getattr(hook, "odernn", False) else quiet


NOT_A_CHOICE = re.compile(r"Invalid value for '(?P<option>[^']+)'(?: / '[^']+')*: "
                          r"(?:Value error, )?'(?P<value>.*)' is not one of (?P<choices>.+?)\.?$")


def _choice_message(message: str) -> str:
    """Click's message for a value outside an option's choices, in odernn's words: the value,
    a "did you mean", the allowed values; any other message as it is."""
    found = NOT_A_CHOICE.match(message)
    if found is None:
        return message
    from odernn.checks import did_you_mean

    allowed = re.findall(r"'([^']*)'", found["choices"])
    return (f"{found['option']} {found['value']!r} unknown{did_you_mean(found['value'], allowed)}; "
            f"allowed: {', '.join(allowed)}")


MAX_MESSAGE = 2000
"""The most characters of an error or warning printed: a message that quotes a value from a
file (an attribute of a million names, a checkpoint's list) keeps its head and its end."""


def shortened(message: str) -> str:
    """``message`` within :data:`MAX_MESSAGE` characters: its head and its end (where the
    advice is), and how much was left out between."""
    if len(message) <= MAX_MESSAGE:
        return message
    head, tail = MAX_MESSAGE * 2 // 3, MAX_MESSAGE // 4
    return (f"{message[:head]} ... ({len(message) - head - tail} characters left out) ... "
            f"{message[-tail:]}")


def _error(message: str, every_rank: bool = False) -> None:
    """Print ``error: message`` (:func:`shortened`) on stderr. In a distributed run
    (torchrun) rank 0 alone prints a bad input, which every rank meets alike;
    ``every_rank``: an error of the environment (a disk, a permission), which may be one
    rank's own, every rank prints, named (``error (rank 1): ...``, rank 0's too)."""
    message = shortened(message)
    if not _distributed():
        print(f"error: {message}", file=sys.stderr)
    elif every_rank:
        print(f"error (rank {os.environ.get('RANK', '0')}): {message}", file=sys.stderr)
    elif os.environ.get("RANK", "0") == "0":
        print(f"error: {message}", file=sys.stderr)


def _distributed() -> bool:
    """Whether this process is one of torchrun's several."""
    return os.environ.get("WORLD_SIZE", "1") != "1"


def _warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
             file: Any = None, line: str | None = None) -> None:
    """A warning as one line, ``warning: message`` (Python's shows the file and the source
    line too; a category other than UserWarning is named); in a distributed run rank 0 alone
    says it, as every rank meets it alike."""
    if not _distributed() or os.environ.get("RANK", "0") == "0":
        kind = "" if category is UserWarning else f"{category.__name__}: "
        print(f"warning: {kind}{shortened(one_line(message))}", file=sys.stderr)


def _peer_left_on_interrupt(exc: BaseException) -> bool:
    """Whether ``exc`` is a data-parallel worker's failed collective (gloo: "Connection closed
    by peer") after ``odernn train --nproc`` passed a user's signal on (its marker file): a
    peer reached by the signal first left. A peer's crash, which torchrun answers by
    stopping the others alike, leaves no marker: the error stays an error."""
    from odernn.interrupt import SAID_ENV, signal_marker

    said = os.environ.get(SAID_ENV)
    return isinstance(exc, RuntimeError) and bool(said) and os.path.exists(signal_marker(said))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns (and, as a script, exits with) the exit code."""
    # One compute thread unless the user asks for more: closed-loop rollouts are many small
    # steps, and with a busy second core torch's default threads ran many times slower; and
    # the numbers must not depend on the machine's cores. Set before anything loads numpy
    # (its OpenBLAS reads it once, when loaded: the reservoir's float64 sums came out other
    # on two threads) or torch.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    if debug:
        args.remove("--debug")
    from odernn.cli import common

    common.ARGV[:] = args  # the reports record the command that wrote them
    common.DEBUG = debug  # train --nproc passes it on to its workers
    from odernn.interrupt import REQUESTED, raise_interrupt, say_interrupted, wraps_interrupt

    REQUESTED.clear()  # a request is this command's (main can run several in one process)
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    hooks = sys.unraisablehook, sys.excepthook
    if argv is None:  # as a program: SIGINT too notes the request (odernn.interrupt.REQUESTED)
        signal.signal(signal.SIGINT, raise_interrupt)
    signal.signal(signal.SIGTERM, raise_interrupt)  # SIGTERM cleans up like Ctrl-C
    if not debug:  # h5py reports errors of objects freed after a failed write: the error
        sys.unraisablehook = _quiet_h5py(sys.unraisablehook)  # itself is already reported
        sys.excepthook = _quiet_h5py(sys.excepthook)
    _register_commands()
    command = typer_main.get_command(app)
    code = 0
    try:
        if args and args[0] in NEEDS_TORCH:
            _import_torch()
        with warnings.catch_warnings():
            if not debug:  # overflow and the like: every result is checked for non-finite
                warnings.simplefilter("ignore", RuntimeWarning)  # values and reported in a line
                warnings.showwarning = _warning
            result = command.main(args, prog_name="odernn", standalone_mode=False)
        if argv is None:  # as a program, the work is done: a signal now changes nothing
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        code = result if isinstance(result, int) else 0
        if code == 130:  # typer turns Ctrl-C (and our SIGTERM) into exit code 130
            say_interrupted(INTERRUPTED)
    except OdernnError as exc:
        if debug:  # the traceback, then the same line and exit code
            traceback.print_exc()
        _error(one_line(exc), every_rank=isinstance(exc, OSError))  # OutputError: a disk
        code = EXIT_BAD_INPUT
    except OSError as exc:  # disk full, permissions, I/O: the environment, not a bug
        if debug:
            traceback.print_exc()
        _error(one_line(exc), every_rank=True)
        code = EXIT_BAD_INPUT
    except MemoryError as exc:  # the budget set above what the machine can give
        if debug:
            traceback.print_exc()
        _error(budget.out_of_memory(exc), every_rank=True)
        code = EXIT_BAD_INPUT
    except Interrupted as exc:
        if str(exc):
            say_interrupted(str(exc))
        code = 130
    except typer.Exit as exc:
        code = exc.exit_code
    except (typer.Abort, KeyboardInterrupt):
        say_interrupted(INTERRUPTED)
        code = 130
    except NO_ARGS_IS_HELP as exc:  # a bare `odernn`: the help, not an error (exit 2, click's)
        print(exc.format_message())
        code = EXIT_BAD_INPUT
    except ClickException as exc:
        if debug:
            traceback.print_exc()
        message = _choice_message(exc.format_message())
        ctx = getattr(exc, "ctx", None)
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        _error(f"{message}{hint}")
        code = EXIT_BAD_INPUT if exc.exit_code == 2 else exc.exit_code
    except Exception as exc:  # a signal's KeyboardInterrupt that Python wrapped (one raised
        # in a class body while a module is imported comes as "RuntimeError: Error calling
        # __set_name__"), or a collective that a peer's interrupt cut short
        if isinstance(exc, RuntimeError) and CPU_ALLOCATOR in str(exc):  # torch's MemoryError
            if debug:
                traceback.print_exc()
            _error(budget.out_of_memory(exc), every_rank=True)
            code = EXIT_BAD_INPUT
        elif debug or not (wraps_interrupt(exc) or _peer_left_on_interrupt(exc)):
            raise
        else:
            say_interrupted(INTERRUPTED)
            code = 130
    finally:
        REQUESTED.clear()  # in one process (tests, notebooks), the next command starts afresh
        if argv is not None:  # and the caller's handlers and hooks are back, an error raised
            for s, h in handlers.items():  # or not: a guard under the command line's handler
                signal.signal(s, h)  # notes a request (REQUESTED), which nothing clears outside
            sys.unraisablehook, sys.excepthook = hooks
    if argv is None:
        # HDF5's own clean-up at exit would retry a failed close (and can crash),
        # the interpreter's shutdown after an interrupt it has seen can die by SIGINT,
        # and a data-parallel worker's can die by SIGABRT in torch's C++ destructors
        # (gloo's threads), after its work is done
        writer = sys.modules.get("odernn.data.writer")
        distributed = sys.modules.get("odernn.learn.distributed")
        if (code == 130 or (writer is not None and writer.unclean_close)
                or (distributed is not None and distributed.joined())):
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        sys.exit(code)
    return code
