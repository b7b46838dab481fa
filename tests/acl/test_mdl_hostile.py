"""Corrupted model images never escape acl.mdl as exceptions: each gets a return code, no model id."""
from __future__ import annotations

import acl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pytest


@pytest.fixture(scope="module")
def image(cnn) -> bytes:
    return cnn.om_bytes()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_corrupted_images_get_codes_not_exceptions(acl_ctx, image, data) -> None:
    blob = bytearray(image)
    flips = data.draw(st.lists(st.tuples(st.integers(0, len(blob) - 1), st.integers(1, 255)), max_size=8))
    for pos, bits in flips:
        blob[pos] ^= bits
    cut = data.draw(st.integers(0, len(blob)))
    mutated = bytes(blob[:cut])
    if not mutated:
        return
    ptr = acl.util.bytes_to_ptr(mutated)
    work, weight, ret = acl.mdl.query_size_from_mem(ptr, len(mutated))
    assert isinstance(ret, int)
    model_id, ret = acl.mdl.load_from_mem(ptr, len(mutated))
    if ret == 0:
        assert model_id >= 1
        assert acl.mdl.unload(model_id) == 0
    else:
        assert model_id == 0 and acl.get_recent_err_msg()
