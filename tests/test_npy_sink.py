"""NpySink writes in a background thread: the file equals the array written, a block the
caller reuses after ``write`` is not corrupted, and a write error surfaces at ``close``, which then removes the file."""

import errno
import os

import numpy as np
import pytest

from dnatlas.analysis.activation_files import NpySink


@pytest.mark.parametrize("layout", ["LC", "CL"])
def test_blocks_in_any_order_and_channel_range_give_the_array(tmp_path, layout):
    rng = np.random.default_rng(0)
    full = rng.standard_normal((100, 6)).astype(np.float16)  # (L, 2C): two halves of 3
    sink = NpySink(tmp_path / "a.npy", 100, 6, np.float16, layout)
    buffer = np.empty((25, 3), dtype=np.float16)
    for row in (75, 0, 50, 25):
        for channel in (3, 0):
            buffer[:] = full[row:row + 25, channel:channel + 3]
            sink.write(row, buffer, channel)  # the same buffer, refilled at once
    got = np.asarray(sink.close())
    np.testing.assert_array_equal(got, full if layout == "LC" else full.T)


def test_a_write_error_surfaces_at_close_and_abort_removes_the_file(tmp_path, monkeypatch):
    sink = NpySink(tmp_path / "b.npy", 10, 2, np.float32, "LC")

    def full_disk(fd, data, offset):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "pwrite", full_disk)
    sink.write(0, np.ones((10, 2), np.float32))
    with pytest.raises(OSError, match="No space"):
        sink.close()
    assert not (tmp_path / "b.npy").exists()  # a half-written array is not left behind
    sink.abort()  # after a failed close: nothing more to do, no error
    sink = NpySink(tmp_path / "c.npy", 10, 2, np.float32, "LC")
    sink.write(0, np.ones((10, 2), np.float32))
    sink.abort()
    assert not (tmp_path / "c.npy").exists()
