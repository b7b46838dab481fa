"""Damaged files either parse or raise OmrtError; nothing else escapes the reader."""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.om.om_testkit import dynamic_model, static_model
from omrt.errors import OmrtError
from omrt.om import model_info_text, om_to_json, query_sizes, read_om, write_om

FILES = [write_om(static_model()), write_om(dynamic_model())]
READERS = [read_om, query_sizes, om_to_json, model_info_text]


def _survives(data: bytes) -> None:
    for fn in READERS:
        try:
            fn(data)
        except OmrtError:
            pass


@st.composite
def damaged(draw):
    buf = bytearray(draw(st.sampled_from(FILES)))
    for _ in range(draw(st.integers(1, 8))):
        pos = draw(st.integers(0, len(buf) - 1))
        if draw(st.booleans()):
            buf[pos] ^= 1 << draw(st.integers(0, 7))
        else:
            buf[pos] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        buf = buf[: draw(st.integers(0, len(buf)))]
    return bytes(buf)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(damaged())
def test_damaged_files(data):
    _survives(data)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(FILES), st.integers(256, 2000), st.binary(min_size=1, max_size=64))
def test_overwritten_spans(data, pos, junk):
    pos = min(pos, len(data) - 1)
    _survives(data[:pos] + junk + data[pos + len(junk):])


def test_every_single_byte_flip_of_the_header_and_table():
    data = FILES[0]
    for pos in range(256 + 8 + 3 * 24):
        buf = bytearray(data)
        buf[pos] ^= 0xFF
        _survives(bytes(buf))
