"""The ``studio`` command: the GUI by default, subcommands for headless work.

Each area registers its subcommands from its own module (``app_cmds``, ``face_cmds``, ...).
Heavy imports (torch, Qt) happen inside the handlers so ``studio --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from studio import __version__
from studio.core.errors import StudioError

# Modules with a ``register(subparsers)`` function; missing ones are skipped so an area can
# land independently.
COMMAND_MODULES = [
    "studio.cli.app_cmds",
    "studio.cli.face_cmds",
    "studio.cli.import_cmds",
    "studio.cli.ingest_cmds",
    "studio.cli.voice_cmds",
    "studio.cli.synth_cmds",
    "studio.cli.train_cmds",
    "studio.cli.render_cmds",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="studio",
        description="Digital Human Studio. With no command, opens the GUI.",
    )
    parser.add_argument("--version", action="version", version=f"studio {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        from studio.cli.app_cmds import run_gui

        return run_gui(None)
    try:
        return int(args.func(args) or 0)
    except StudioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `studio voices | head`: the reader left, nothing is wrong
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
