import contextlib
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from studio.core import project as proj
from studio.core.errors import FileFormatError
from studio.core.project import (
    Project,
    load_project,
    migrate,
    project_from_text,
    project_to_text,
    resolve_asset,
)


def test_round_trip(tmp_path):
    p = Project(name="Ada")
    p.avatar.seed = 42
    p.avatar.controls["smile"] = 0.5
    p.timeline.tracks.append(proj.CurveTrack(channel="mouth_open", keys=[proj.Key(t=0.5, v=1.0)]))
    p.timeline.clips.append(proj.Clip(kind="speech", start=1.0, text="Hello", audio="audio/a.wav"))
    text = project_to_text(p)
    assert json.loads(text)["schema_version"] == proj.SCHEMA_VERSION
    again = project_from_text(text)
    assert again == p


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("", "empty"),
        ("{", "not valid JSON"),
        ("[]", "top level is not a JSON object"),
        ('{"name": "x"}', "schema_version"),
        ('{"schema_version": 99}', "newer version"),
        ('{"schema_version": 1, "avatar": {"seed": -1}}', "avatar.seed"),
        ('{"schema_version": 1, "avatar": {"seed": 1e400}}', "out of range"),
        ('{"schema_version": 1, "avatar": {"truncation": NaN}}', "not allowed"),
        ('{"schema_version": 1, "avatar": {"seed": "7"}}', "avatar.seed"),
        ('{"schema_version": 1, "avatar": {"latent": "../../etc/passwd"}}', "escapes"),
        ('{"schema_version": 1, "avatar": {"latent": "/etc/passwd"}}', "relative"),
        ('{"schema_version": 1, "avatar": {"model": "library:../x"}}', "library model"),
        ('{"schema_version": 1, "bogus": 1}', "bogus"),
        ('{"schema_version": 1, "avatar": {"controls": {"smile": 1e300}}}', "controls"),
        ('{"schema_version": 1, "avatar": {"seed": ' + "9" * 5000 + "}}", "not valid JSON"),
        ("[" * 100000 + "]" * 100000, "nested"),
    ],
)
def test_bad_files_give_clear_errors(tmp_path, text, fragment):
    f = tmp_path / "bad.dhproj"
    f.write_text(text)
    before = f.read_bytes()
    with pytest.raises(FileFormatError) as err:
        load_project(f)
    assert fragment in str(err.value)
    assert str(f) in str(err.value)  # the message names the file
    assert f.read_bytes() == before  # and nothing changed on disk


def test_not_utf8_and_missing(tmp_path):
    f = tmp_path / "bin.dhproj"
    f.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(FileFormatError, match="UTF-8"):
        load_project(f)
    with pytest.raises(FileFormatError, match="not found"):
        load_project(tmp_path / "nope.dhproj")
    with pytest.raises(FileFormatError, match="folder"):
        load_project(tmp_path)


def test_truncated_file(tmp_path):
    text = project_to_text(Project())
    f = tmp_path / "t.dhproj"
    f.write_text(text[: len(text) // 2])
    with pytest.raises(FileFormatError, match="not valid JSON"):
        load_project(f)


def test_migration_chain(monkeypatch):
    def v0_to_v1(data):
        data = dict(data)
        data["name"] = data.pop("title")
        return data

    monkeypatch.setitem(proj.MIGRATIONS, 0, v0_to_v1)
    migrated = migrate({"schema_version": 0, "title": "Old"})
    assert migrated == {"schema_version": proj.SCHEMA_VERSION, "name": "Old"}
    assert project_from_text('{"schema_version": 0, "title": "Old"}').name == "Old"


def test_resolve_asset_stays_inside(tmp_path):
    f = tmp_path / "p.dhproj"
    assert resolve_asset(f, "audio/a.wav") == (tmp_path / "audio" / "a.wav").resolve()
    with pytest.raises(ValueError):
        resolve_asset(f, "../x.wav")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.dictionaries(st.sampled_from(["schema_version", "name", "avatar", "voice",
                                        "timeline", "refiner", "x"]), json_values))
def test_arbitrary_json_never_crashes(data):
    text = json.dumps(data)
    with contextlib.suppress(FileFormatError):
        project_from_text(text)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_crash(tmp_path_factory, blob):
    f = tmp_path_factory.mktemp("h") / "x.dhproj"
    f.write_bytes(blob)
    with contextlib.suppress(FileFormatError):
        load_project(f)
