"""A file hashed as it is written (gradient:// writes) gets the SHA-256 and block SHA-256s a read of it would."""

from __future__ import annotations

import os

import pytest

from gradient_jupyter.engine.hashing import StreamHashes, block_hashes


@pytest.mark.parametrize("size", [0, 999, 4096, 4097, 20_000, 65_536])
def test_hashes_as_written_match_hashes_as_read(tmp_path, size):
    data = os.urandom(size)
    path = tmp_path / "f"
    hashes = StreamHashes(str(path), block_size=4096, threshold=8192)
    with open(path, "wb") as f:
        for start in range(0, size, 3001):  # pieces that never line up with the blocks
            piece = data[start : start + 3001]
            f.write(piece)
            f.flush()
            hashes.update(piece)
    sha, n, blocks = hashes.result()
    whole, read, expected = block_hashes(path, 4096)
    assert (sha, n) == (whole, read) == (whole, size)
    assert blocks == (expected if size >= 8192 else None)
