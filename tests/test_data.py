"""Tests of npvae.data: checksums, file resolution, downloads, parsers,
binarisation (the data conventions, docs/12-data.md) and the offline data sets.

Tests marked ``data`` read the real files and run only when NPVAE_DATA points
at a folder laid out as ``<NPVAE_DATA>/<dataset folder>/<file>``.

Downloads and checksums are patched on :mod:`npvae.data.files`, the module
that owns them (patching the ``npvae.data`` package would have no effect).
"""

import gzip
import hashlib
import io
import math
import os
import socket
import struct
import urllib.error
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from npvae import data
from npvae.data import files as data_files

FAST = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


# ---------------------------------------------------------------------------
# Helpers and fixtures
# ---------------------------------------------------------------------------

def idx_bytes(array: np.ndarray) -> bytes:
    """Plain IDX encoding of a uint8 array."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def sha(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


@pytest.fixture
def env(monkeypatch, tmp_path):
    """No NPVAE_DATA, a private cache folder, an empty checksum cache."""
    monkeypatch.delenv("NPVAE_DATA", raising=False)
    monkeypatch.setenv("NPVAE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(data_files, "_HASH_CACHE", {})
    return tmp_path


@pytest.fixture
def fake_file(monkeypatch):
    """Register mnist/fake.bin with a known payload; returns the payload."""
    payload = b"npvae test payload " * 50

    def register(urls=("http://mirror.invalid/fake.bin",), content=payload):
        monkeypatch.setitem(data.REGISTRY["mnist"], "fake.bin",
                            data.FileSpec(sha(content), len(content), tuple(urls)))
        return content
    return register


class FakeResponse:
    """A urllib response that serves ``payload`` in small reads, then maybe fails."""

    def __init__(self, payload: bytes, fail_after: int | None = None,
                 exc: BaseException = ConnectionResetError("connection reset by peer")):
        self.stream, self.fail_after, self.exc, self.sent = io.BytesIO(payload), fail_after, exc, 0

    def read(self, n=-1):
        if self.fail_after is not None and self.sent >= self.fail_after:
            raise self.exc
        chunk = self.stream.read(min(n, 64) if n and n > 0 else 64)
        self.sent += len(chunk)
        return chunk

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def serve(monkeypatch, responses):
    """Make data_files._open_url return the next of ``responses`` (or raise it)."""
    calls = []

    def opener(url, timeout):
        calls.append((url, timeout))
        item = responses[len(calls) - 1]
        if isinstance(item, BaseException):
            raise item
        return item
    monkeypatch.setattr(data_files, "_open_url", opener)
    return calls


@pytest.fixture
def real_data():
    root = os.environ.get("NPVAE_DATA")
    if not root:
        pytest.skip("set NPVAE_DATA to a folder laid out as <folder>/<file> (mnist/, ...)")
    return Path(root)


# ---------------------------------------------------------------------------
# Checksums
# ---------------------------------------------------------------------------

def test_checksum_mismatch_names_file_and_hashes(env):
    folder = env / "root" / "mnist"
    folder.mkdir(parents=True)
    bad = folder / "t10k-labels-idx1-ubyte.gz"
    bad.write_bytes(b"not the MNIST labels")
    expected = data.REGISTRY["mnist"]["t10k-labels-idx1-ubyte.gz"].sha256
    with pytest.raises(data.ChecksumError) as info:
        data.resolve_file("mnist", bad.name, data_dir=env / "root", download=False)
    message = str(info.value)
    assert str(bad) in message and expected in message and sha(bad.read_bytes()) in message
    assert isinstance(info.value, ValueError)
    assert info.value.path == str(bad)


def test_truncated_file_is_a_checksum_error(env, fake_file):
    payload = fake_file()
    (env / "root" / "mnist").mkdir(parents=True)
    (env / "root" / "mnist" / "fake.bin").write_bytes(payload[:-10])
    with pytest.raises(data.ChecksumError, match="truncated"):
        data.resolve_file("mnist", "fake.bin", data_dir=env / "root", download=False)


def test_load_dataset_rejects_wrong_file(env):
    folder = env / "root" / "mnist"
    folder.mkdir(parents=True)
    for name in data.REGISTRY["mnist"]:
        (folder / name).write_bytes(b"\x1f\x8b garbage")
    with pytest.raises(data.ChecksumError, match="idx"):
        data.load_dataset("mnist", data_dir=env / "root", download=False)


def test_bad_copy_is_not_replaced_by_a_good_one_silently(env, monkeypatch, fake_file):
    payload = fake_file()
    env_root, cache = env / "env_root", env / "cache"
    for root, content in ((env_root, b"wrong"), (cache, payload)):
        (root / "mnist").mkdir(parents=True)
        (root / "mnist" / "fake.bin").write_bytes(content)
    monkeypatch.setenv("NPVAE_DATA", str(env_root))
    with pytest.raises(data.ChecksumError):
        data.resolve_file("mnist", "fake.bin")


def test_verification_is_cached_until_the_file_changes(env, monkeypatch, fake_file):
    payload = fake_file()
    path = env / "cache" / "mnist" / "fake.bin"
    path.parent.mkdir(parents=True)
    path.write_bytes(payload)
    hashed = []
    real_hash = data_files._hash_file
    monkeypatch.setattr(data_files, "_hash_file", lambda p: hashed.append(p) or real_hash(p))
    for _ in range(3):
        assert data.resolve_file("mnist", "fake.bin") == path
    assert len(hashed) == 1
    path.write_bytes(payload[::-1])  # same size, new content and mtime
    os.utime(path, ns=(1, 1))
    with pytest.raises(data.ChecksumError):
        data.resolve_file("mnist", "fake.bin")
    assert len(hashed) == 2


# ---------------------------------------------------------------------------
# Resolution order and errors
# ---------------------------------------------------------------------------

def _plant(root: Path, payload: bytes, flat=False) -> Path:
    folder = root if flat else root / "mnist"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "fake.bin").write_bytes(payload)
    return folder / "fake.bin"


def test_resolution_order(env, monkeypatch, fake_file):
    payload = fake_file()
    explicit = _plant(env / "explicit", payload)
    from_env = _plant(env / "env_root", payload)
    cached = _plant(env / "cache", payload)
    monkeypatch.setenv("NPVAE_DATA", str(env / "env_root"))
    assert data.resolve_file("mnist", "fake.bin", data_dir=env / "explicit") == explicit
    assert data.resolve_file("mnist", "fake.bin") == from_env
    monkeypatch.delenv("NPVAE_DATA")
    assert data.resolve_file("mnist", "fake.bin", download=False) == cached
    # an explicit folder that lacks the file falls through to the next place
    (env / "empty").mkdir()
    assert data.resolve_file("mnist", "fake.bin", data_dir=env / "empty") == cached


def test_explicit_folder_may_hold_the_file_directly(env, fake_file):
    flat = _plant(env / "flat", fake_file(), flat=True)
    assert data.resolve_file("mnist", "fake.bin", data_dir=env / "flat") == flat


def test_cache_defaults_to_home(monkeypatch, tmp_path):
    monkeypatch.delenv("NPVAE_CACHE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert data.cache_dir() == tmp_path / ".cache" / "npvae"


def test_not_found_without_download_lists_places(env, monkeypatch):
    monkeypatch.setenv("NPVAE_DATA", str(env / "env_root"))
    with pytest.raises(data.DataNotFoundError) as info:
        data.resolve_file("fashion-mnist", "t10k-labels-idx1-ubyte.gz",
                          data_dir=env / "explicit", download=False)
    message = str(info.value)
    assert "t10k-labels-idx1-ubyte.gz" in message and "download=False" in message
    for root in ("explicit", "env_root", "cache"):
        assert str(env / root / "fashion-mnist" / "t10k-labels-idx1-ubyte.gz") in message
    assert isinstance(info.value, FileNotFoundError)


def test_frey_has_no_mirror_and_says_where_to_put_it(env, monkeypatch):
    monkeypatch.setattr(data_files, "_open_url", pytest.fail)  # must not even try
    with pytest.raises(data.DataNotFoundError, match="no public download mirror") as info:
        data.load_dataset("frey")
    assert str(env / "cache" / "frey" / "frey_faces.npz") in str(info.value)


def test_real_urllib_failure_is_quick_and_clear(env, fake_file, monkeypatch):
    with socket.socket() as s:  # a local port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    fake_file(urls=(f"http://127.0.0.1:{port}/fake.bin",))
    monkeypatch.setattr(data_files, "DOWNLOAD_TIMEOUT", 5.0)
    with pytest.raises(data.DataNotFoundError) as info:
        data.resolve_file("mnist", "fake.bin")
    message = str(info.value)
    assert "fake.bin" in message and f"127.0.0.1:{port}" in message
    assert str(env / "cache" / "mnist" / "fake.bin") in message
    assert not (env / "cache" / "mnist" / "fake.bin").exists()


def test_unknown_names():
    with pytest.raises(ValueError, match="known data sets: mnist, fashion_mnist"):
        data.load_dataset("cifar10")
    with pytest.raises(ValueError, match="known files"):
        data.resolve_file("mnist", "nope.gz")
    with pytest.raises(ValueError, match="no files"):
        data.resolve_file("digits", "x")


# ---------------------------------------------------------------------------
# Downloads (mocked opener)
# ---------------------------------------------------------------------------

def test_successful_download_lands_after_verification(env, monkeypatch, fake_file):
    payload = fake_file(urls=("http://a.invalid/fake.bin", "http://b.invalid/fake.bin"))
    calls = serve(monkeypatch, [urllib.error.URLError("no route"), FakeResponse(payload)])
    path = data.resolve_file("mnist", "fake.bin")
    assert path == env / "cache" / "mnist" / "fake.bin"
    assert path.read_bytes() == payload
    assert [url for url, _ in calls] == ["http://a.invalid/fake.bin", "http://b.invalid/fake.bin"]
    assert all(timeout == data_files.DOWNLOAD_TIMEOUT for _, timeout in calls)
    assert sorted(p.name for p in path.parent.iterdir()) == ["fake.bin"]
    serve(monkeypatch, [])  # now found in the cache: no second download
    assert data.resolve_file("mnist", "fake.bin") == path


@pytest.mark.parametrize("exc", [ConnectionResetError("reset"), KeyboardInterrupt()])
def test_interrupted_download_leaves_nothing(env, monkeypatch, fake_file, exc):
    payload = fake_file()
    serve(monkeypatch, [FakeResponse(payload, fail_after=200, exc=exc)])
    expected = data.DataNotFoundError if isinstance(exc, OSError) else KeyboardInterrupt
    with pytest.raises(expected) as info:
        data.resolve_file("mnist", "fake.bin")
    folder = env / "cache" / "mnist"
    assert list(folder.iterdir()) == []  # no final file, no temporary file
    if expected is data.DataNotFoundError:
        assert "reset" in str(info.value) and "fake.bin" in str(info.value)


@pytest.mark.parametrize("served", [b"tampered", "short", "long"])
def test_download_with_wrong_bytes_is_rejected(env, monkeypatch, fake_file, served):
    payload = fake_file(urls=("http://a.invalid/fake.bin", "http://b.invalid/fake.bin"))
    body = {"short": payload[:-1], "long": payload + b"x" * 500}.get(served, served)
    calls = serve(monkeypatch, [FakeResponse(body), FakeResponse(payload)])
    with pytest.raises(data.ChecksumError) as info:
        data.resolve_file("mnist", "fake.bin")
    assert "fake.bin" in str(info.value) and sha(payload) in str(info.value)
    assert len(calls) == 1  # no silent retry on the second mirror
    assert list((env / "cache" / "mnist").iterdir()) == []


# ---------------------------------------------------------------------------
# IDX parser
# ---------------------------------------------------------------------------

@FAST
@given(array=hnp.arrays(np.uint8, hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=6)),
       compress=st.booleans())
def test_idx_round_trip(tmp_path, array, compress):
    raw = idx_bytes(array)
    raw = gzip.compress(raw, mtime=0) if compress else raw
    path = tmp_path / "a.idx"
    path.write_bytes(raw)
    for source in (path, str(path), io.BytesIO(raw)):
        out = data.read_idx(source, expected_ndim=array.ndim)
        assert out.dtype == np.uint8 and out.shape == array.shape
        np.testing.assert_array_equal(out, array)
        out.flags.writeable = True  # a private, writable copy


SMALL = hnp.arrays(np.uint8, hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=5))


@FAST
@given(array=SMALL, data_=st.data())
def test_truncated_idx_raises(array, data_):
    raw = idx_bytes(array)
    cut = data_.draw(st.integers(0, len(raw) - 1))
    with pytest.raises(data.DataFormatError):
        data.read_idx(io.BytesIO(raw[:cut]))
    with pytest.raises(data.DataFormatError, match="trailing"):
        data.read_idx(io.BytesIO(raw + b"\0"))


@FAST
@given(array=SMALL, data_=st.data())
def test_corrupt_idx_header_raises(array, data_):
    raw = bytearray(idx_bytes(array))
    position = data_.draw(st.integers(0, 4 + 4 * array.ndim - 1))
    raw[position] ^= data_.draw(st.integers(1, 255))
    with pytest.raises(data.DataFormatError):
        data.read_idx(io.BytesIO(bytes(raw)), expected_ndim=array.ndim)


@FAST
@given(array=SMALL, data_=st.data())
def test_truncated_gzip_idx_raises(array, data_):
    raw = gzip.compress(idx_bytes(array), mtime=0)
    cut = data_.draw(st.integers(0, len(raw) - 1))
    with pytest.raises(data.DataFormatError):
        data.read_idx(io.BytesIO(raw[:cut]))


@FAST
@given(array=SMALL, data_=st.data())
def test_corrupt_gzip_idx_raises_or_is_harmless(array, data_):
    """A corrupted byte either raises DataFormatError or changes nothing
    (gzip header fields such as the time stamp are not checked)."""
    raw = bytearray(gzip.compress(idx_bytes(array), mtime=0))
    position = data_.draw(st.integers(0, len(raw) - 1))
    raw[position] ^= data_.draw(st.integers(1, 255))
    try:
        out = data.read_idx(io.BytesIO(bytes(raw)), expected_ndim=array.ndim)
    except data.DataFormatError:
        return
    np.testing.assert_array_equal(out, array)


@pytest.mark.parametrize("where", ["deflate data", "crc32", "length"])
def test_corrupt_gzip_body_or_trailer_raises(where):
    raw = bytearray(gzip.compress(idx_bytes(np.arange(36, dtype=np.uint8)), mtime=0))
    position = {"deflate data": 12, "crc32": len(raw) - 8, "length": len(raw) - 1}[where]
    raw[position] ^= 0xFF
    with pytest.raises(data.DataFormatError, match="gzip"):
        data.read_idx(io.BytesIO(bytes(raw)))


def test_bad_magic_number(tmp_path):
    labels = idx_bytes(np.arange(10, dtype=np.uint8))  # magic 2049
    with pytest.raises(data.DataFormatError, match="2051"):
        data.read_idx(io.BytesIO(labels), expected_ndim=3)
    path = tmp_path / "float.idx"
    path.write_bytes(b"\x00\x00\x0d\x01" + labels[4:])  # type 0x0D = float
    with pytest.raises(data.DataFormatError, match=r"float\.idx.*type byte 0x0d"):
        data.read_idx(path)
    with pytest.raises(data.DataFormatError, match="magic"):
        data.read_idx(io.BytesIO(b"\x12\x34" + labels[2:]))
    with pytest.raises(data.DataFormatError, match="0 dimensions"):
        data.read_idx(io.BytesIO(b"\x00\x00\x08\x00"))


def test_gzip_stream_cut_short_names_the_file(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (20, 28, 28), dtype=np.uint8)
    raw = gzip.compress(idx_bytes(images))
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(data.DataFormatError, match="train-images-idx3-ubyte.gz.*truncated gzip"):
        data.read_idx(path, expected_ndim=3)
    with gzip.open(path) as stream:  # an already-open gzip stream
        with pytest.raises(data.DataFormatError, match="gzip"):
            data.read_idx(stream)


# ---------------------------------------------------------------------------
# .amat parser and binarized MNIST from .amat files
# ---------------------------------------------------------------------------

def amat_bytes(x: np.ndarray) -> bytes:
    return "".join(" ".join(map(str, row)) + "\n" for row in x).encode()


@FAST
@given(x=hnp.arrays(np.uint8, hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=9),
                    elements=st.integers(0, 1)))
def test_amat_round_trip(tmp_path, x):
    path = tmp_path / "x.amat"
    path.write_bytes(amat_bytes(x))
    np.testing.assert_array_equal(data.read_amat(path), x)
    path.write_bytes(amat_bytes(x).replace(b" ", b"\t").replace(b"\n", b"\r\n"))
    np.testing.assert_array_equal(data.read_amat(path), x)


@pytest.mark.parametrize("text, match", [
    (b"", "empty"),
    (b"0 1 1\n1 0\n", "line 2 has 2 values"),
    (b"0 1 1\n1 0 2\n", "line 2 must hold values 0 or 1"),
    (b"0 1 x\n", "line 1"),
])
def test_amat_errors(tmp_path, text, match):
    path = tmp_path / "bad.amat"
    path.write_bytes(text)
    with pytest.raises(data.DataFormatError, match=match):
        data.read_amat(path)


def test_amat_feature_count(tmp_path):
    path = tmp_path / "x.amat"
    path.write_bytes(b"0 1\n")
    with pytest.raises(data.DataFormatError, match="expected 784"):
        data.read_amat(path, n_features=784)


def test_binarized_mnist_from_amat_files(env, monkeypatch):
    folder = env / "root" / "binarized_mnist"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(3)
    parts = {}
    for split, rows in (("train", 7), ("valid", 3), ("test", 4)):
        parts[split] = rng.integers(0, 2, (rows, 784), dtype=np.uint8)
        raw = amat_bytes(parts[split])
        name = f"binarized_mnist_{split}.amat"
        (folder / name).write_bytes(raw)
        monkeypatch.setitem(data.REGISTRY["binarized_mnist"], name,
                            data.FileSpec(sha(raw), len(raw), ("http://x.invalid/" + name,)))
    ds = data.load_dataset("binarized_mnist", data_dir=env / "root", download=False)
    np.testing.assert_array_equal(ds.x_train, parts["train"] * 255)
    np.testing.assert_array_equal(ds.x_valid, parts["valid"] * 255)
    np.testing.assert_array_equal(ds.x_test, parts["test"] * 255)
    assert ds.y_train is None and ds.binarization == "static" and ds.likelihood_hint == "bernoulli"
    merged = data.load_dataset("binarized_mnist", data_dir=env / "root", download=False,
                               validation_size=0)
    assert merged.x_valid is None and len(merged.x_train) == 10
    with pytest.raises(ValueError, match="official validation"):
        data.load_dataset("binarized_mnist", data_dir=env / "root", validation_size=0.1)
    with pytest.raises(ValueError, match="statically binarised"):
        data.load_dataset("binarized_mnist", data_dir=env / "root", binarization="dynamic")


# ---------------------------------------------------------------------------
# Binarisation and batches (docs/12-data.md)
# ---------------------------------------------------------------------------

PIXELS = hnp.arrays(np.uint8, hnp.array_shapes(min_dims=1, max_dims=3, max_side=8))


@FAST
@given(x=PIXELS, seed=st.integers(0, 2**32 - 1))
def test_binarisations_are_binary(x, seed):
    static = data.binarize_static(x)
    assert static.dtype == np.uint8 and static.shape == x.shape
    np.testing.assert_array_equal(static, (x >= 128).astype(np.uint8))
    dynamic = data.binarize_dynamic(x, np.random.default_rng(seed))
    assert dynamic.dtype == np.uint8 and dynamic.shape == x.shape
    assert set(np.unique(dynamic)) <= {0, 1}
    assert not dynamic[x == 0].any() and dynamic[x == 255].all()


def test_dynamic_mean_is_pixel_over_255():
    x = np.broadcast_to(np.arange(256, dtype=np.uint8), (4000, 256))  # (draws, levels)
    mean = data.binarize_dynamic(x, np.random.default_rng(0)).mean(axis=0)
    p = np.arange(256) / 255
    assert np.all(np.abs(mean - p) <= 5 * np.sqrt(p * (1 - p) / 4000) + 1e-12)


def test_batches_dynamic_fresh_per_epoch_and_reproducible():
    x = np.random.default_rng(1).integers(0, 256, (100, 30), dtype=np.uint8)  # (N, D)

    def epoch(rng, shuffle=True):
        return np.concatenate(list(data.iterate_minibatches(
            x, 32, rng, "dynamic", np.float32, shuffle=shuffle)))

    rng = np.random.default_rng(7)
    first, second = epoch(rng, shuffle=False), epoch(rng, shuffle=False)
    assert not np.array_equal(first, second)  # new draws each epoch
    np.testing.assert_array_equal(epoch(np.random.default_rng(7)), epoch(np.random.default_rng(7)))
    assert set(np.unique(first)) <= {0.0, 1.0}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batches_convert_per_batch(dtype):
    n = 103
    x = np.zeros((n, 4), np.uint8)
    x[:, 0] = np.arange(n)  # row id, also a grey level
    x[:, 1] = 200
    before = x.copy()
    batches = list(data.iterate_minibatches(x, 25, np.random.default_rng(0), "none", dtype,
                                            y=np.arange(n)))
    assert [len(b) for b, _ in batches] == [25, 25, 25, 25, 3]
    assert all(b.dtype == dtype for b, _ in batches)
    xs = np.concatenate([b for b, _ in batches])
    ys = np.concatenate([yb for _, yb in batches])
    np.testing.assert_array_equal(np.sort(ys), np.arange(n))  # a permutation
    assert not np.array_equal(ys, np.arange(n))  # shuffled
    np.testing.assert_allclose(xs[:, 0], ys / 255, rtol=1e-6)  # labels follow their rows
    np.testing.assert_allclose(xs[:, 1], 200 / 255, rtol=1e-6)
    np.testing.assert_array_equal(x, before)  # stored data untouched, still uint8
    static = np.concatenate(list(data.iterate_minibatches(x, 25, 0, "static", dtype)))
    assert static.dtype == dtype and static[:, 1].all() and not static[:, 2].any()
    dropped = list(data.iterate_minibatches(x, 25, 0, "none", dtype, drop_last=True))
    assert [len(b) for b in dropped] == [25] * 4


def test_batch_argument_checks():
    x = np.zeros((5, 2), np.uint8)
    with pytest.raises(TypeError, match="uint8"):
        data.iterate_minibatches(x.astype(np.float32), 2, 0)
    with pytest.raises(TypeError, match="floating"):
        data.iterate_minibatches(x, 2, 0, "none", np.int32)
    with pytest.raises(ValueError, match="binarization"):
        data.iterate_minibatches(x, 2, 0, "otsu")
    with pytest.raises(ValueError, match="batch_size"):
        data.iterate_minibatches(x, 0, 0)
    with pytest.raises(ValueError, match="random_state"):
        data.convert_batch(x, "dynamic")


# ---------------------------------------------------------------------------
# Offline data sets and splits
# ---------------------------------------------------------------------------

def test_digits_offline():
    ds = data.load_dataset("digits", download=False)
    assert ds.x_train.shape == (1500, 64) and ds.x_test.shape == (297, 64)
    assert ds.x_train.dtype == np.uint8 and ds.y_train.dtype == np.int64
    assert ds.image_shape == (8, 8) and ds.binarization == "dynamic"
    assert ds.likelihood_hint == "bernoulli" and "scikit-learn" in ds.source
    assert ds.x_train.max() == 255 and len(np.unique(ds.x_train)) == 17  # 0..16 scaled
    assert set(np.unique(ds.x_test)) == {0, 255}  # test binarised once
    again = data.load_dataset("digits")
    np.testing.assert_array_equal(again.x_test, ds.x_test)  # fixed seed
    np.testing.assert_array_equal(again.y_test, ds.y_test)
    grey = data.load_dataset("digits", binarization="none")
    assert grey.likelihood_hint == "gaussian" and len(np.unique(grey.x_test)) == 17
    static = data.load_dataset("digits", binarization="static")
    np.testing.assert_array_equal(static.x_test, (grey.x_test >= 128) * 255)
    assert "digits: 1500 train / 0 valid / 297 test" in data.describe(ds)


def test_synthetic_offline_and_learnable_shape():
    ds = data.load_dataset("synthetic")
    assert ds.x_train.shape == (2000, 256) and ds.x_test.shape == (500, 256)
    assert ds.image_shape == (16, 16) and ds.likelihood_hint == "bernoulli"
    assert set(np.unique(ds.x_train)) == {0, 255}
    assert set(np.unique(ds.y_train)) == {0, 1, 2, 3}
    ink = (ds.x_train > 0).sum(axis=1)
    assert np.all(ink[ds.y_train == 0] == 32) and np.all(ink[ds.y_train == 3] == 25)
    np.testing.assert_array_equal(data.load_dataset("synthetic").x_train, ds.x_train)
    batch = next(ds.train_batches(64, np.random.default_rng(0)))
    assert batch.shape == (64, 256) and set(np.unique(batch)) == {0.0, 1.0}


def test_dataset_train_batches_dynamic_and_eval_arrays():
    ds = data.load_dataset("digits", validation_size=100, random_state=3)
    assert set(np.unique(ds.x_valid)) <= {0, 255}
    rng = np.random.default_rng(0)
    a = np.concatenate(list(ds.train_batches(500, rng, shuffle=False)))
    b = np.concatenate(list(ds.train_batches(500, rng, shuffle=False)))
    assert a.shape == (1400, 64) and not np.array_equal(a, b)
    x, y = next(ds.train_batches(10, rng, np.float64, with_labels=True))
    assert x.dtype == np.float64 and y.shape == (10,)
    test = ds.as_float("test")
    assert test.dtype == np.float32 and set(np.unique(test)) <= {0.0, 1.0}
    with pytest.raises(ValueError, match="no 'valid'"):
        data.load_dataset("digits").as_float("valid")


def test_validation_split_reproducible():
    x = np.arange(200, dtype=np.uint8).reshape(100, 2)
    y = np.arange(100)
    a = data.train_validation_split(x, y, 0.25, random_state=5)
    b = data.train_validation_split(x, y, 0.25, random_state=5)
    c = data.train_validation_split(x, y, 0.25, random_state=6)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a[3], c[3])
    x_tr, y_tr, x_va, y_va = a
    assert len(x_va) == 25 and len(x_tr) == 75
    np.testing.assert_array_equal(np.sort(np.concatenate([y_tr, y_va])), y)
    np.testing.assert_array_equal(x_va[:, 0], 2 * y_va)  # rows keep their labels
    assert data.train_validation_split(x, None, 10, 0)[1] is None
    with pytest.raises(ValueError, match="no training data"):
        data.train_validation_split(x, y, 100, 0)
    d1 = data.load_dataset("synthetic", validation_size=300, random_state=1)
    d2 = data.load_dataset("synthetic", validation_size=300, random_state=1)
    np.testing.assert_array_equal(d1.y_valid, d2.y_valid)
    assert d1.x_train.shape == (1700, 256)


def test_available_datasets():
    assert data.available_datasets() == (
        "mnist", "fashion_mnist", "binarized_mnist", "frey", "digits", "synthetic")


def test_frey_from_a_small_fake_file(env, monkeypatch):
    rng = np.random.default_rng(0)
    x = rng.integers(8, 239, (300, 560), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, x=x, image_shape=np.array([28, 20]))
    (env / "root" / "frey").mkdir(parents=True)
    (env / "root" / "frey" / "frey_faces.npz").write_bytes(buffer.getvalue())
    monkeypatch.setitem(data.REGISTRY["frey"], "frey_faces.npz",
                        data.FileSpec(sha(buffer.getvalue()), len(buffer.getvalue())))
    ds = data.load_dataset("frey", data_dir=env / "root")
    assert ds.x_train.shape == (100, 560) and ds.x_test.shape == (200, 560)
    assert ds.image_shape == (28, 20) and ds.likelihood_hint == "gaussian"
    assert ds.binarization == "none" and ds.y_train is None
    batch = next(ds.train_batches(16, 0))
    assert 8 / 255 - 1e-6 <= batch.min() and batch.max() <= 238 / 255 + 1e-6


# ---------------------------------------------------------------------------
# Real data (NPVAE_DATA)
# ---------------------------------------------------------------------------

@pytest.mark.data
def test_real_mnist(real_data):
    ds = data.load_dataset("mnist", data_dir=real_data, download=False, binarization="none")
    assert ds.x_train.shape == (60000, 784) and ds.x_test.shape == (10000, 784)
    assert ds.x_train.dtype == np.uint8 and ds.image_shape == (28, 28)
    assert np.bincount(ds.y_train).tolist() == [5923, 6742, 5958, 6131, 5842,
                                                5421, 5918, 6265, 5851, 5949]
    assert np.bincount(ds.y_test).tolist() == [980, 1135, 1032, 1010, 982,
                                               892, 958, 1028, 974, 1009]
    assert ds.x_train.max() == 255 and ds.x_train.min() == 0


@pytest.mark.data
def test_real_fashion_mnist(real_data):
    ds = data.load_dataset("fashion_mnist", data_dir=real_data, download=False)
    assert ds.x_train.shape == (60000, 784) and ds.x_test.shape == (10000, 784)
    assert np.bincount(ds.y_train).tolist() == [6000] * 10
    assert np.bincount(ds.y_test).tolist() == [1000] * 10
    assert ds.binarization == "dynamic" and set(np.unique(ds.x_test)) == {0, 255}


@pytest.mark.data
def test_real_binarized_mnist(real_data):
    ds = data.load_dataset("binarized_mnist", data_dir=real_data, download=False)
    assert ds.x_train.shape == (50000, 784)
    assert ds.x_valid.shape == (10000, 784) and ds.x_test.shape == (10000, 784)
    assert ds.y_train is None and ds.y_test is None
    for x, mean in ((ds.x_train, 0.13056), (ds.x_valid, 0.13113), (ds.x_test, 0.13251)):
        assert abs((x == 255).mean() - mean) < 5e-6
    assert set(np.unique(ds.x_train)) == {0, 255}


@pytest.mark.data
def test_real_frey(real_data):
    ds = data.load_dataset("frey", data_dir=real_data, download=False)
    x = np.concatenate([ds.x_train, ds.x_test])
    assert x.shape == (1965, 560) and ds.image_shape == (28, 20)
    assert x.min() == 8 and x.max() == 238
    assert ds.likelihood_hint == "gaussian"
    npz = np.load(real_data / "frey" / "frey_faces.npz")
    assert hashlib.sha256(npz["x"].tobytes()).hexdigest() == (
        "2438ba4f0d2a6bd8bac43de756141eaa33c8d248dd613d464bdb1210d9b7af78")
    np.testing.assert_array_equal(np.sort(x, axis=0), np.sort(npz["x"], axis=0))


@pytest.mark.data
def test_real_data_through_environment(real_data, monkeypatch, tmp_path):
    monkeypatch.setenv("NPVAE_DATA", str(real_data))
    monkeypatch.setenv("NPVAE_CACHE", str(tmp_path / "cache"))
    path = data.resolve_file("mnist", "t10k-labels-idx1-ubyte.gz", download=False)
    assert path == real_data / "mnist" / "t10k-labels-idx1-ubyte.gz"
    assert math.prod(data.read_idx(path, expected_ndim=1).shape) == 10000
