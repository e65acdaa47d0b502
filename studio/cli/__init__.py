"""The ``studio`` command: the GUI by default, subcommands for headless work.

Each area registers its subcommands from its own module (``app_cmds``, ``face_cmds``, ...),
imported explicitly below: a misspelt or missing module fails at once, loudly. Heavy imports
(torch, Qt) happen inside the handlers so ``studio --help`` stays fast.

Every command runs under one handler (:func:`main`) that turns whatever escapes it into one
line on stderr: a :class:`StudioError` is the user's to act on (exit 2), an ``OSError`` names
the file and what the system said (exit 2), and anything else is a bug whose full traceback
goes to a log file under :func:`studio.core.paths.log_dir` (exit 1). Never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys

from studio import __version__
from studio.cli import (
    app_cmds,
    controls_cmds,
    face_cmds,
    import_cmds,
    ingest_cmds,
    invert_cmds,
    refine_cmds,
    render_cmds,
    synth_cmds,
    timeline_cmds,
    train_cmds,
    voice_cmds,
)
from studio.cli.crashlog import one_line, os_error_message, write_error_log
from studio.core.errors import StudioError

# Modules with a ``register(subparsers)`` function, in the order of ``studio --help``.
# A new area adds its module here (and to the import above).
COMMAND_MODULES = (
    app_cmds,
    face_cmds,
    controls_cmds,
    import_cmds,
    ingest_cmds,
    invert_cmds,
    voice_cmds,
    timeline_cmds,
    render_cmds,
    refine_cmds,
    synth_cmds,
    train_cmds,
)

EXIT_BUG = 1  # an unexpected error (a bug): details in the log file
EXIT_ERROR = 2  # bad input or a system problem the user can act on
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="studio",
        description="Digital Human Studio. With no command, opens the GUI.",
    )
    parser.add_argument("--version", action="version", version=f"studio {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def _run(args: argparse.Namespace) -> int:
    if args.command is None:
        return app_cmds.run_gui(None)
    return int(args.func(args) or 0)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except StudioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `studio voices | head`: the reader left, nothing is wrong
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except OSError as exc:  # read-only folder, disk full, permission denied, ...
        print(f"error: {os_error_message(exc)}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as exc:  # noqa: BLE001 - the one place every other error ends up
        print(one_line(exc, write_error_log(exc, argv)), file=sys.stderr)
        return EXIT_BUG


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
