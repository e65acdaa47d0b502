"""The timings JSON file: writing, reading, and clear errors for bad files."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from studio.core.errors import FileFormatError
from studio.voice.types import (
    Phone,
    Timings,
    Word,
    dump_timings,
    load_timings,
    parse_timings,
    save_timings,
    timings_from_dict,
)


def test_round_trip_file(tmp_path):
    t = Timings([Phone("h", 0.0, 0.05), Phone("aɪ", 0.05, 0.2)], [Word("Hi", 0.0, 0.2, True)],
                0.3, [0.2])
    path = save_timings(tmp_path / "t.json", t)
    back = load_timings(path)
    assert back == t
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["phonemes"][1] == {"phoneme": "aɪ", "start": 0.05, "end": 0.2}
    assert data["words"][0] == {"word": "Hi", "start": 0.0, "end": 0.2}


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ("{}", "'phonemes' or a 'words'"),
        ('{"phonemes": 3}', "must be a list"),
        ('{"phonemes": [{"phoneme": "a", "start": 0}]}', "has no 'end'"),
        ('{"phonemes": [{"phoneme": "a", "start": 1, "end": 0.5}]}', "before it starts"),
        ('{"phonemes": [{"phoneme": "a", "start": -1, "end": 0.5}]}', "before 0"),
        ('{"phonemes": [{"phoneme": 5, "start": 0, "end": 0.5}]}', "must be a string"),
        ('{"words": [{"word": "a", "start": "0", "end": 0.5}]}', "must be a number"),
        ('{"words": [{"word": "a", "start": NaN, "end": 0.5}]}', "finite"),
        ('{"words": [], "emphasis": ["x"]}', "word indices"),
    ],
)
def test_bad_files_name_the_problem(tmp_path, text, message):
    path = tmp_path / "bad.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(FileFormatError, match=message) as err:
        load_timings(path)
    assert "bad.json" in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(FileFormatError, match="not found"):
        load_timings(tmp_path / "nope.json")


times = st.floats(0, 1000, allow_nan=False, allow_infinity=False)
labels = st.text(min_size=0, max_size=4)


@st.composite
def spans(draw, kind):
    a, b = sorted((draw(times), draw(times)))
    return {kind: draw(labels), "start": a, "end": b}


@settings(max_examples=100, deadline=None)
@given(st.lists(spans("phoneme"), max_size=20), st.lists(spans("word"), max_size=10))
def test_any_valid_document_round_trips(phonemes, words):
    t = timings_from_dict({"phonemes": phonemes, "words": words})
    assert len(t.phonemes) == len(phonemes) and len(t.words) == len(words)
    assert all(p.start <= p.end for p in t.phonemes)
    assert [p.start for p in t.phonemes] == sorted(p.start for p in t.phonemes)
    back = parse_timings(dump_timings(t))
    # times are written with 6 decimals, so compare rounded and in file order
    expect = sorted((round(p.start, 6), round(p.end, 6), p.phoneme) for p in t.phonemes)
    got = sorted((p.start, p.end, p.phoneme) for p in back.phonemes)
    assert len(got) == len(expect)
    for x, y in zip(got, expect, strict=True):
        assert x[2] == y[2]
        assert math.isclose(x[0], y[0], abs_tol=1e-6) and math.isclose(x[1], y[1], abs_tol=1e-6)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12,
)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.sampled_from(["phonemes", "words", "duration", "emphasis",
                                        "sentence_ends", "x"]), json_values, max_size=4))
def test_arbitrary_json_is_accepted_or_rejected_clearly(doc):
    text = json.dumps(doc)
    try:
        t = parse_timings(text, "doc.json")
    except FileFormatError as exc:
        assert "doc.json" in str(exc)
        return
    assert isinstance(t, Timings)
