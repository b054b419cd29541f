"""The ``dnatlas`` command line: one entry point, one module per subcommand.

Each module in this package that defines ``register(subparsers)`` adds its
subcommand(s); the parser it registers must set ``func`` (a callable taking the
parsed ``argparse.Namespace`` and returning an exit code or ``None``).

Errors caused by the user's input (:class:`dnatlas.errors.DnatlasError`) are
printed as one line on stderr and exit with code 2, with no traceback.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import pkgutil
import sys

from dnatlas._version import __version__
from dnatlas.errors import DnatlasError


class DnatlasArgumentParser(argparse.ArgumentParser):
    """Flag errors as one line, ``dnatlas: error: COMMAND: ...``, exit code 2 (the usage goes
    to ``--help``)."""

    def error(self, message: str):
        command = self.prog.removeprefix("dnatlas").strip()
        where = f"{command}: " if command else ""
        self.exit(2, f"dnatlas: error: {where}{message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = DnatlasArgumentParser(
        prog="dnatlas",
        description="Train and interpret DNA language models.",
    )
    parser.add_argument("--version", action="version", version=f"dnatlas {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a flag error already printed
        return int(exc.code or 0) if not isinstance(exc.code, str) else 2
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    try:
        if hasattr(args, "genome_required"):  # --genome, with its deprecated spellings
            from dnatlas.cli._model_input import genome_of

            args.genome = genome_of(args)
        _check_extras(args)
        code = args.func(args)
    except DnatlasError as exc:
        from dnatlas.cli.flags import error_line

        command = getattr(args.func, "__module__", "").rpartition(".")[2]
        print(f"dnatlas: error: {error_line(exc, command)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dnatlas: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `dnatlas data info STORE | head`
        sys.stderr.close()
        return 0
    except (OSError, RuntimeError) as exc:  # SafetensorError is a RuntimeError too
        line = write_failure(exc)
        if line is None:
            raise
        print(f"dnatlas: error: {line}", file=sys.stderr)
        return 2
    return 0 if code is None else int(code)


#: errnos of a write that failed for want of space or permission: the user's to fix
WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM,
                errno.EFBIG}
_WRITE_WORDS = ("No space left on device", "Disk quot", "Read-only file system",
                "Permission denied", "os error 28", "File too large")


def write_failure(exc: BaseException) -> str | None:
    """One line for an output that could not be written (disk full, quota, read-only or
    permission), from an ``OSError`` or from a library that wraps one (safetensors' and
    torch's ``RuntimeError``); None for any other error (a bug: its traceback is kept)."""
    if isinstance(exc, OSError) and not isinstance(exc, BrokenPipeError) \
            and exc.errno in WRITE_ERRNOS:
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror or exc}"
    text = str(exc)
    for words in _WRITE_WORDS:
        if words.lower() in text.lower():
            first = text.splitlines()[0] if text else type(exc).__name__
            return f"cannot write an output: {first[:200]}"
    return None


def _check_extras(args: argparse.Namespace) -> None:
    """The extras the command declared (``_model_input.needs``), before any work."""
    wanted = getattr(args, "needs", None)
    if wanted is not None:
        from dnatlas import extras

        extras.require(*wanted(args), what=args.needs_what,
                       modules=getattr(args, "needs_modules", None))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
