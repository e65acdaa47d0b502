"""Inline tags: pauses and emphasis."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from studio.core.errors import StudioError
from studio.voice.tags import MAX_PAUSE, Pause, TagError, TextRun, parse_duration, parse_tags


def runs(parsed):
    return [p for p in parsed.parts if isinstance(p, TextRun)]


def test_plain_text_is_one_run():
    parsed = parse_tags("Hello there, friend.")
    assert parsed.parts == [TextRun("Hello there, friend.", [])]


@pytest.mark.parametrize(
    "tag, seconds",
    [("[pause 500ms]", 0.5), ("[pause 1.5s]", 1.5), ("[pause 2]", 2.0), ("[PAUSE 250 ms]", 0.25),
     ('<break time="500ms"/>', 0.5), ("<break time='1s'/>", 1.0),
     ('<break strength="strong"/>', 0.7), ("<break/>", 0.4)],
)
def test_pauses(tag, seconds):
    parsed = parse_tags(f"one {tag} two")
    assert [type(p) for p in parsed.parts] == [TextRun, Pause, TextRun]
    assert parsed.parts[1].seconds == pytest.approx(seconds)
    assert parsed.plain == "one two"


def test_emphasis_star_and_ssml():
    for text in ("I said *no* twice", "I said <emphasis>no</emphasis> twice"):
        (run,) = runs(parse_tags(text))
        assert run.text == "I said no twice"
        assert [run.text[a:b] for a, b in run.emphasis] == ["no"]


def test_lone_star_is_text():
    (run,) = runs(parse_tags("2 * 3 is six"))
    assert run.text == "2 * 3 is six" and run.emphasis == []
    (run,) = runs(parse_tags("a *b"))
    assert run.text == "a *b"


def test_escapes():
    (run,) = runs(parse_tags(r"\*not emphasis\* and \[pause 1s]"))
    assert run.text == "*not emphasis* and [pause 1s]" and run.emphasis == []


def test_emphasis_across_pause():
    parsed = parse_tags("*very [pause 200ms] important* news")
    first, second = runs(parsed)
    assert [first.text[a:b] for a, b in first.emphasis] == ["very"]
    assert [second.text[a:b] for a, b in second.emphasis] == ["important"]


def test_bad_pause_names_the_place():
    with pytest.raises(TagError, match="character 7"):
        parse_tags("Wait, [pause soon] now")
    with pytest.raises(TagError, match="longer than"):
        parse_tags(f"x [pause {MAX_PAUSE + 1}s] y")
    with pytest.raises(TagError, match="strength"):
        parse_tags('x <break strength="huge"/> y')


def test_parse_duration():
    assert parse_duration("750ms") == pytest.approx(0.75)
    assert parse_duration(" .5 s ") == pytest.approx(0.5)
    with pytest.raises(TagError):
        parse_duration("-1s")


SAFE = st.text(alphabet=st.characters(blacklist_characters="*[]<>\\", blacklist_categories=("Cs",)))


@settings(max_examples=150, deadline=None)
@given(SAFE)
def test_text_without_tag_characters_passes_through(text):
    parsed = parse_tags(text)
    if text.strip():
        assert parsed.parts == [TextRun(text, [])]
    else:
        assert parsed.parts == []


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=60))
def test_any_text_parses_or_fails_clearly(text):
    try:
        parsed = parse_tags(text)
    except StudioError:
        return
    for part in parsed.parts:
        if isinstance(part, Pause):
            assert 0 < part.seconds <= MAX_PAUSE
        else:
            assert part.text.strip()
            for a, b in part.emphasis:
                assert 0 <= a < b <= len(part.text)
                assert not part.text[a].isspace() and not part.text[b - 1].isspace()


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.from_regex(r"[A-Za-z]{1,8}( [A-Za-z]{1,8}){0,3}", fullmatch=True),
                  st.integers(1, 5000), st.booleans()),
        min_size=1, max_size=5,
    )
)
def test_generated_tags_round_trip(items):
    text = " ".join(
        (f"*{words}*" if emph else words) + f" [pause {ms}ms]" for words, ms, emph in items
    )
    parsed = parse_tags(text)
    pauses = [p.seconds for p in parsed.parts if isinstance(p, Pause)]
    assert pauses == pytest.approx([ms / 1000 for _, ms, _ in items])
    got = runs(parsed)
    assert [r.text.strip() for r in got] == [w for w, _, _ in items]
    for run, (words, _, emph) in zip(got, items, strict=True):
        spans = [run.text[a:b] for a, b in run.emphasis]
        assert spans == ([words] if emph else [])
