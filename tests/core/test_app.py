"""The app model: settings, device, model registry and transport, with psygnal events."""

import pytest

from studio.core.app import AppModel, ModelRegistry, Transport, same_device
from studio.core.devices import DeviceChoice
from studio.core.model_registry import ModelEntry
from studio.core.settings import Settings


def test_app_model_is_qt_free():
    import ast
    from pathlib import Path

    import studio.core.app as module

    tree = ast.parse(Path(module.__file__).read_text())
    names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert not any(n.split(".")[0] in ("PySide6", "pyqtgraph", "sounddevice") for n in names)


def test_device_event_fires_only_when_the_device_changes():
    app = AppModel(Settings(device="cpu", precision="fp32"))
    assert app.device.device == "cpu" and app.device.precision == "fp32"
    devices, applied = [], []
    app.events.device.connect(devices.append)
    app.events.settings.connect(applied.append)
    app.update_settings(autosave_interval_s=60)  # nothing about the device
    assert devices == [] and applied == [app.settings]
    app.update_settings(precision="bf16")
    assert [(d.device, d.precision) for d in devices] == [("cpu", "bf16")]
    assert app.device is devices[-1]


def test_bad_setting_is_refused():
    app = AppModel(Settings(device="cpu"))
    with pytest.raises(ValueError):
        app.update_settings(device="quantum")
    assert app.settings.device == "cpu"


def test_same_device_ignores_the_reason():
    a = DeviceChoice("cpu", "fp32", "chosen in preferences")
    assert same_device(a, DeviceChoice("cpu", "fp32", "no CUDA GPU found"))
    assert not same_device(a, DeviceChoice("cpu", "bf16", "chosen in preferences"))
    assert not same_device(None, a) and same_device(None, None)


def test_registry_scans_folders_and_sources_and_tells_on_refresh(tmp_path):
    (tmp_path / "voice").mkdir()
    (tmp_path / "voice" / "lonely.onnx").write_bytes(b"x")  # no config: a problem, listed
    extra = ModelEntry("voice", "packaged", tmp_path / "packaged.onnx")
    registry = ModelRegistry(lambda: [tmp_path], [lambda: [extra]])
    assert registry.entries == [extra]
    assert any("lonely.onnx" in p for p in registry.problems)
    changed = []
    registry.changed.connect(lambda: changed.append(True))
    (tmp_path / "refiner").mkdir()
    (tmp_path / "refiner" / "mine").mkdir()
    (tmp_path / "refiner" / "mine" / "model_index.json").write_text("{}")
    registry.refresh()
    assert changed == [True]
    assert [e.name for e in registry.of_kind("refiner")] == ["mine"]


def test_model_folders_changed_in_settings_rescan(tmp_path):
    app = AppModel(Settings(device="cpu", precision="fp32"))
    assert not app.models.of_kind("refiner")
    (tmp_path / "refiner" / "extra").mkdir(parents=True)
    (tmp_path / "refiner" / "extra" / "model_index.json").write_text("{}")
    changed = []
    app.models.changed.connect(lambda: changed.append(True))
    app.update_settings(model_dirs=[str(tmp_path)])
    assert changed and [e.name for e in app.models.of_kind("refiner")] == ["extra"]


def test_transport_events():
    t = Transport()
    seen = []
    t.events.time.connect(seen.append)
    t.events.playing.connect(lambda v: seen.append(("playing", v)))
    t.events.loop.connect(lambda v: seen.append(("loop", v)))
    t.seek(2.5)
    t.seek(2.5)  # no change, no event
    t.seek(-1)
    t.play()
    t.set_loop(1.0, 3.0)
    t.set_loop(None)
    assert seen == [2.5, 0.0, ("playing", True), ("loop", (1.0, 3.0)), ("loop", None)]
    with pytest.raises(ValueError, match="end after it starts"):
        t.set_loop(3.0, 1.0)
