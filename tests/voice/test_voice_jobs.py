"""Speech as jobs: progress, results, cancellation; words ↔ phones mapping; IPA helpers."""

from __future__ import annotations

import numpy as np

from studio.core.jobs import Job, JobState
from studio.voice.ipa import ipa_to_arpabet, merge_symbols, split_ipa, tokenize_words
from studio.voice.jobs import align_job, speak_job
from studio.voice.wordmap import assign_words

TEXT = "First sentence here. Second one follows. And a third."


def test_speak_job_reports_progress_and_returns_speech():
    events = []
    job = Job("speak", speak_job, TEXT, "joe", cache=None)
    job.progressed.connect(events.append)
    job.run()
    assert job.state is JobState.DONE, job.error
    assert len(job.result.words) == 9
    fractions = [e.fraction for e in events if e.fraction is not None]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert any("sentence 2 of 3" in e.message for e in events)


def test_speak_job_cancels():
    job = Job("speak", speak_job, TEXT, "joe", cache=None)
    job.progressed.connect(lambda p: job.cancel())
    job.run()
    assert job.state is JobState.CANCELLED and job.result is None


def test_align_job_from_array_and_bad_file(tmp_path):
    speech = Job("speak", speak_job, "Hello there.", "espeak:en-us").run()
    job = Job("align", align_job, speech.audio, "Hello there.", speech.sample_rate)
    job.run()
    assert job.state is JobState.DONE and [w.word for w in job.result.words] == ["Hello", "there"]
    bad = tmp_path / "bad.flac"
    bad.write_bytes(b"fLaC" + bytes(40))
    job = Job("align", align_job, bad, "Hello")
    job.run()
    assert job.state is JobState.FAILED and "bad.flac" in job.error


def test_split_ipa_and_symbols():
    assert split_ipa("dˈɪdʒɪtəl") == ["d", "ɪ", "dʒ", "ɪ", "t", "ə", "l"]
    assert split_ipa("hjˈuːmən") == ["h", "j", "uː", "m", "ə", "n"]
    assert split_ipa("mˈaɪ nˈeɪm, ɪz") == ["m", "aɪ", "n", "eɪ", "m", "ɪ", "z"]
    assert split_ipa("t͡s") == ["t͡s"]
    # a stress mark's time goes to the next phone, a length mark joins the one before
    merged = merge_symbols([("b", 0, 1), ("ˈ", 1, 2), ("ɔ", 2, 3), ("ː", 3, 4), ("t", 4, 5)])
    assert merged == [("b", 0, 1), ("ɔː", 1, 4), ("t", 4, 5)]
    assert ipa_to_arpabet(split_ipa("fˈɔːɹɾi tˈuː")) == ["F", "AO", "R", "T", "IY", "T", "UW"]
    assert tokenize_words("Don't stop—it's 42, o'clock!") == [
        ("Don't", 0, 5), ("stop", 6, 10), ("it's", 11, 15), ("42", 16, 18), ("o'clock", 20, 27)]


def test_assign_words_handles_merged_words():
    # eSpeak says "I am" as "aɪɐm": the words still get their own phones
    spoken = ["aɪ", "ɐ", "m", "j", "ʊ", "ɹ"]
    words = [["aɪ"], ["æ", "m"], ["j", "ʊ", "ɹ"]]
    owners, used = assign_words(spoken, words)
    assert owners == [0, 1, 1, 2, 2, 2] and used == 3
    # the spoken phones of one sentence may cover only the first words of the text
    owners, used = assign_words(["h", "aɪ"], [["h", "aɪ"], ["ð", "ɛ", "ɹ"]], free_end=True)
    assert owners == [0, 0] and used == 1
    owners, _ = assign_words(["x", "y"], [])
    assert owners == [0, 0]
    owners, _ = assign_words(list("abcdef"), [["a"], ["q", "d"], ["f"]])
    assert owners[0] == 0 and owners[-1] == 2 and np.all(np.diff(owners) >= 0)
