"""Curves for other tools: CSV with ARKit names, JSON per channel, sampled like the render."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from studio.core.errors import StudioError
from studio.core.project import CurveTrack, Key, Project
from studio.render.export import curves_csv, curves_json, export_curves


def _project() -> Project:
    p = Project()
    p.timeline.fps = 4
    p.timeline.duration = 1.0
    lin = [Key(t=0, v=0, interp="linear"), Key(t=1, v=1, interp="linear")]
    p.timeline.tracks = [CurveTrack(channel="mouth_open", keys=lin),
                         CurveTrack(channel="smile", keys=lin),
                         CurveTrack(channel="head_yaw", keys=lin),
                         CurveTrack(channel="wink", keys=lin),
                         CurveTrack(channel="blink", keys=lin, muted=True)]
    return p


def test_csv_has_arkit_columns_and_the_sampled_values():
    rows = list(csv.reader(io.StringIO(curves_csv(_project()))))
    assert rows[0] == ["time", "HeadYaw", "jawOpen", "mouthSmileLeft", "mouthSmileRight", "wink"]
    values = np.array(rows[1:], float)
    np.testing.assert_allclose(values[:, 0], [0, 0.25, 0.5, 0.75])
    for col in range(1, 6):  # every linear ramp equals the time; the muted blink is absent
        np.testing.assert_allclose(values[:, col], values[:, 0], atol=1e-6)


def test_json_per_channel_and_files(tmp_path):
    doc = json.loads(curves_json(_project(), (0.5, 1.0), fps=8))
    assert doc["fps"] == 8 and doc["frames"] == 4 and doc["start"] == 0.5
    ch = doc["channels"]
    assert set(ch) == {"mouth_open", "smile", "head_yaw", "wink"}
    assert ch["smile"]["arkit"] == ["mouthSmileLeft", "mouthSmileRight"]
    assert ch["wink"]["arkit"] == [] and len(ch["wink"]["keys"]) == 2
    np.testing.assert_allclose(ch["mouth_open"]["values"], [0.5, 0.625, 0.75, 0.875])
    assert export_curves(_project(), tmp_path / "c.json").is_file()
    with pytest.raises(StudioError, match="csv"):
        export_curves(_project(), tmp_path / "c.txt")
