import json
import os
import subprocess
import sys

from studio.core.devices import select_device
from studio.core.project import Project, project_to_text
from studio.core.recovery import RecoveryStore
from studio.core.settings import Settings, load_settings, save_settings, settings_path


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_recovery_offers_snapshots_of_dead_sessions(tmp_path):
    store = RecoveryStore(tmp_path)
    store.write(project_to_text(Project(name="Mine")), None, "Untitled")
    assert store.pending() == []  # our own, still running
    other = RecoveryStore(tmp_path)
    assert other.pending() == []  # same pid: alive
    # fake a crashed session
    data = json.loads(store.file.read_text())
    data["meta"]["pid"] = _dead_pid()
    (tmp_path / "crashed.recovery.json").write_text(json.dumps(data))
    entries = other.pending()
    assert len(entries) == 1
    assert other.load(entries[0]).name == "Mine"
    other.discard(entries[0])
    assert other.pending() == []


def test_damaged_recovery_files_are_ignored(tmp_path):
    (tmp_path / "x.recovery.json").write_text("{garbage")
    assert RecoveryStore(tmp_path).pending() == []


def test_settings_round_trip_and_broken_file():
    s = Settings(device="cpu", autosave_interval_s=10)
    s.add_recent("/tmp/a.dhproj")
    save_settings(s)
    loaded, warning = load_settings()
    assert warning is None and loaded.device == "cpu" and loaded.recent_projects
    settings_path().write_text("{not json")
    loaded, warning = load_settings()
    assert loaded == Settings() and "unreadable settings" in warning
    assert not settings_path().exists()  # moved aside, not lost
    assert list(settings_path().parent.glob("settings.broken-*.json"))


def test_device_selection_on_cpu(monkeypatch):
    monkeypatch.setattr("studio.core.devices.cuda_available", lambda: False)
    monkeypatch.setattr("studio.core.devices.cpu_has_fast_bf16", lambda: True)
    c = select_device("auto", "auto")
    assert (c.device, c.precision) == ("cpu", "bf16")
    monkeypatch.setattr("studio.core.devices.cpu_has_fast_bf16", lambda: False)
    assert select_device("auto", "auto").precision == "fp32"
    assert select_device("cuda", "auto").device == "cpu"
    assert select_device("cpu", "fp16").precision == "fp32"
    monkeypatch.setattr("studio.core.devices.cuda_available", lambda: True)
    assert select_device("cpu", "fp32").device == "cpu"
    assert os.environ.get("STUDIO_HOME")
