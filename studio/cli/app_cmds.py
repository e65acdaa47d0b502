"""App-level commands: the GUI, `info`, `screenshot`."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from studio.core.errors import StudioError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("gui", help="open the studio window (the default)")
    p.add_argument("project", nargs="?", help="a .dhproj file to open")
    p.set_defaults(func=lambda a: run_gui(a.project))

    p = sub.add_parser("info", help="devices, versions and models found")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("screenshot", help="save a PNG of the main window (works without a display)")
    p.add_argument("out", help="PNG file to write")
    p.add_argument("--project", help="a .dhproj file to open first")
    p.add_argument("--size", default="1400x900", help="window size WxH (default 1400x900)")
    p.add_argument("--timeout", type=float, default=180.0,
                   help="seconds to wait for the first preview frame")
    p.set_defaults(func=cmd_screenshot)


def run_gui(project: str | None) -> int:
    from studio.ui.app import create_app, has_display, open_main_window

    if not has_display():
        print("error: no display found (DISPLAY/WAYLAND_DISPLAY are unset). Run the studio on "
              "a desktop, under `xvfb-run studio`, or use `studio screenshot OUT.png` to see "
              "the window without a display.", file=sys.stderr)
        return 1
    from studio.ui.platform_check import xcb_problem

    problem = xcb_problem()  # Qt would abort the process with its raw message instead
    if problem:
        print(problem, file=sys.stderr)
        return 1
    app = create_app()
    try:
        window = open_main_window(project, demo_on_first_start=True)
    except StudioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    window.show()
    return app.exec()


def cmd_info(args: argparse.Namespace) -> int:
    import json

    from studio.core.about import versions
    from studio.core.devices import cpu_flags, cpu_has_fast_bf16, select_device
    from studio.core.model_registry import scan_models
    from studio.core.settings import load_settings

    settings, warning = load_settings()
    choice = select_device(settings.device, settings.precision)
    import torch

    cuda = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    models, problems = scan_models(settings.all_model_dirs())
    from studio.voice.voices import packaged_voice_entries

    models += packaged_voice_entries()
    flags = cpu_flags()
    info = {
        "device": {"selected": choice.device, "precision": choice.precision,
                   "reason": choice.reason, "cuda_devices": cuda,
                   "cpu_bf16_fast": cpu_has_fast_bf16(),
                   "cpu_amx": "amx_bf16" in flags, "cpu_avx512_bf16": "avx512_bf16" in flags,
                   "torch_threads": torch.get_num_threads()},
        "versions": versions(),
        "model_dirs": [str(d) for d in settings.all_model_dirs()],
        "models": [{"kind": m.kind, "name": m.name, "path": str(m.path), **m.details}
                   for m in models],
        "problems": problems + ([warning] if warning else []),
    }
    if args.json:
        print(json.dumps(info, indent=1))
        return 0
    d = info["device"]
    print(f"Device: {d['selected']} ({d['precision']}) — {d['reason']}")
    print(f"  CUDA devices: {', '.join(cuda) or 'none'}")
    print(f"  CPU fast bf16: {'yes' if d['cpu_bf16_fast'] else 'no'} "
          f"(AMX: {'yes' if d['cpu_amx'] else 'no'}, AVX512-BF16: "
          f"{'yes' if d['cpu_avx512_bf16'] else 'no'}), torch threads: {d['torch_threads']}")
    print("Versions:")
    for k, v in info["versions"].items():
        print(f"  {k}: {v}")
    print("Model folders:")
    for p in info["model_dirs"]:
        print(f"  {p}")
    print(f"Models found: {len(models)}")
    for m in info["models"]:
        print(f"  [{m['kind']}] {m['name']}: {m['path']}")
    for p in info["problems"]:
        print(f"  problem: {p}")
    return 0


def cmd_screenshot(args: argparse.Namespace) -> int:
    try:
        w, h = (int(v) for v in args.size.lower().split("x"))
        if not (200 <= w <= 8000 and 200 <= h <= 8000):
            raise ValueError
    except ValueError:
        raise StudioError(f"--size must look like 1400x900 (got {args.size!r})") from None
    out = Path(args.out)
    if args.project and not Path(args.project).exists():
        raise StudioError("file not found", args.project)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from studio.ui.app import create_app, open_main_window

    app = create_app()
    window = open_main_window(args.project, offer_recovery=False)
    window.resize(w, h)
    window.show()
    ready, problem = wait_for_preview(app, window, args.timeout)
    pixmap = window.grab()
    out.parent.mkdir(parents=True, exist_ok=True)
    ok = pixmap.save(str(out), "PNG")
    window.document.history.mark_clean()  # nothing to ask: a screenshot edits nothing
    window.close()
    app.processEvents()
    if not ok:
        raise StudioError("could not write the PNG", out)
    if problem is not None:
        first = problem.strip().splitlines()[0] if problem.strip() else "unknown problem"
        raise StudioError(f"the face preview failed: {first} (the window as it is was saved "
                          f"to {out})")
    if not ready:
        print("warning: the preview did not finish before the timeout", file=sys.stderr)
    print(f"wrote {out} ({pixmap.width()}x{pixmap.height()})")
    return 0


def preview_problem(window: Any) -> str | None:
    """What the face panel reports as wrong with its preview (a model that does not load, a
    render that failed, a request that does not fit the model), once its preview runner has
    nothing left to do; None while it works or when all is well."""
    from studio.ui.face_panel import FacePanel

    for panel in window.panels.values():
        if isinstance(panel, FacePanel) and panel.problem.text() and panel.preview.idle:
            return panel.problem.text()
    return None


def wait_for_preview(app: Any, window: Any, timeout_s: float) -> tuple[bool, str | None]:
    """Process events until every panel that renders has drawn, or one reports a failure
    (then at once: a failed render never becomes ready). Returns (ready, problem)."""
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        app.processEvents()
        problem = preview_problem(window)
        if problem is not None:
            return False, problem
        pending = [p for p in window.panels.values()
                   if hasattr(p, "is_ready") and not p.is_ready()]
        if not pending:
            for _ in range(5):
                app.processEvents()
                time.sleep(0.02)
            return True, preview_problem(window)
        time.sleep(0.02)
    return False, preview_problem(window)
