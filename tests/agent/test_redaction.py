"""Sensitive values never leave the agent, however Terraform's output is cut into pieces."""

from __future__ import annotations

import json
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from app.agent.redaction import MASK, Redactor, redact_json


def stream(redactor: Redactor, pieces: list[bytes]) -> bytes:
    return b"".join(redactor.feed(piece) for piece in pieces) + redactor.flush()


def test_a_secret_split_at_every_possible_boundary_is_masked() -> None:
    text = b"password = hunter2-long-secret\nnext line\n"
    for cut in range(1, len(text)):
        out = stream(Redactor(["hunter2-long-secret"]), [text[:cut], text[cut:]])
        assert out == b"password = ***\nnext line\n", cut


def test_byte_by_byte_output_is_masked() -> None:
    text = b"a s3cret b s3cret\n"
    assert stream(Redactor(["s3cret"]), [bytes([b]) for b in text]) == b"a *** b ***\n"


def test_a_multi_line_secret_is_masked_line_by_line() -> None:
    key = "-----BEGIN KEY-----\nMIIEvQIBADANBgkq\n-----END KEY-----"
    out = stream(Redactor([key]), [key.encode()[:7], key.encode()[7:] + b"\n"])
    assert out == b"***\n***\n***\n"


def test_the_escaped_form_terraform_prints_inside_quotes_is_masked() -> None:
    out = stream(Redactor(['pa"ss\\word']), [b'value = "pa\\"ss\\\\word"\n'])
    assert out == b'value = "***"\n'


def test_the_longest_of_overlapping_secrets_wins() -> None:
    assert stream(Redactor(["abc", "abcdef"]), [b"xabcdefx abcx\n"]) == b"x***x ***x\n"


def test_an_endless_line_is_released_in_bounded_pieces_and_still_masked() -> None:
    redactor = Redactor(["topsecretvalue"], max_pending=64)
    released = b""
    for _ in range(100):
        released += redactor.feed(b"..........topsecret")
        released += redactor.feed(b"value.....")
        assert len(redactor._pending) <= 64
    released += redactor.flush()
    assert b"topsecret" not in released.replace(MASK, b"|") and released.count(MASK) == 100


def test_without_secrets_output_passes_unchanged_but_in_whole_lines() -> None:
    redactor = Redactor([])
    assert redactor.feed(b"partial") == b""
    assert redactor.feed(b" line\nnext") == b"partial line\n"
    assert redactor.flush() == b"next"


def test_empty_secrets_are_ignored() -> None:
    assert stream(Redactor(["", "\n"]), [b"anything\n"]) == b"anything\n"


text_alphabet = st.sampled_from([b"a", b"b", b"c", b"\n", b" ", b"x"])


@settings(max_examples=300, deadline=None)
@given(
    secret=st.text(alphabet="abc", min_size=2, max_size=6),
    filler=st.lists(st.one_of(text_alphabet, st.just(b"SECRET")), max_size=40),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=10),
    max_pending=st.integers(min_value=1, max_value=40),
)
def test_no_cut_of_the_output_lets_a_secret_through(
    secret: str, filler: list[bytes], cuts: list[int], max_pending: int
) -> None:
    text = b"".join(secret.encode() if part == b"SECRET" else part for part in filler)
    bounds = sorted({0, len(text), *(min(cut, len(text)) for cut in cuts)})
    pieces = [text[start:end] for start, end in pairwise(bounds)]
    out = stream(Redactor([secret], max_pending=max_pending), pieces)
    assert secret.encode() not in out
    # Without early releases, the pieces give exactly the redaction of the whole text.
    assert stream(Redactor([secret], max_pending=1 << 20), pieces) == Redactor([secret]).redact(text)


def test_a_json_plan_is_masked_inside_its_strings_and_stays_valid_json() -> None:
    plan = {
        "format_version": "1.2",
        "variables": {"db_password": {"value": 'pa"ss\nword'}, "count": {"value": 1}},
        "resource_changes": [{"change": {"after": {"command": 'echo pa"ss', "n": 1}}}],
    }
    document = json.dumps(plan).encode()
    masked = redact_json(document, Redactor(['pa"ss\nword', "1"]))
    found = json.loads(masked)  # still a JSON plan: numbers are not strings
    assert found["variables"]["db_password"]["value"] == "***\n***"
    assert found["variables"]["count"]["value"] == 1 and found["resource_changes"][0]["change"]["after"]["n"] == 1
    assert found["resource_changes"][0]["change"]["after"]["command"] == "echo ***"
    assert b'pa\\"ss' not in masked
    assert redact_json(document, Redactor(["absent"])) is document  # nothing to mask: the document as it came
