"""The ``dnatlas`` command line: one entry point, one module per subcommand.

Each module in this package that defines ``register(subparsers)`` adds its
subcommand(s); the parser it registers must set ``func`` (a callable taking the
parsed ``argparse.Namespace`` and returning an exit code or ``None``).

Errors caused by the user's input (:class:`dnatlas.errors.DnatlasError`) are
printed as one line on stderr and exit with code 2, with no traceback.
"""

from __future__ import annotations

import argparse
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
        code = args.func(args)
    except DnatlasError as exc:
        print(f"dnatlas: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dnatlas: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `dnatlas data info STORE | head`
        sys.stderr.close()
        return 0
    return 0 if code is None else int(code)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
