"""Downloading MNIST, against HTTP servers on 127.0.0.1 only (never the internet)."""

from __future__ import annotations

import gzip
import hashlib
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from fastbp import datasets


def gz(payload: bytes) -> bytes:
    return gzip.compress(payload, mtime=0)


FAKE = {f"file{i}": gz(bytes(range(i, i + 50)) * 20) for i in range(2)}
FAKE_DIGESTS = {name: {"gz": hashlib.sha256(data).hexdigest()} for name, data in FAKE.items()}


class Mirror:
    """An HTTP server on 127.0.0.1 serving ``files`` ({url path: bytes}); ``truncate`` names
    paths whose body is cut short of the Content-Length it announces."""

    def __init__(self, files, truncate=()):
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                data = outer.files.get(self.path)
                outer.requests.append(self.path)
                if data is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data[: len(data) // 2] if self.path in outer.truncate else data)

            def log_message(self, *args):
                pass

        self.files, self.truncate, self.requests = files, set(truncate), []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/mnist/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def mirrors():
    started = []

    def start(files, truncate=()):
        m = Mirror(files, truncate)
        started.append(m)
        return m

    yield start
    for m in started:
        m.close()


def dead_url():
    """A URL on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/mnist/"


def served(names=FAKE, prefix="/mnist/"):
    return {f"{prefix}{name}.gz": FAKE[name] for name in names}


def test_downloads_every_missing_file_atomically(tmp_path, mirrors):
    good = mirrors(served())
    (tmp_path / "file1.gz").write_bytes(FAKE["file1"])  # present: not fetched again
    datasets.download_mnist(tmp_path, mirrors=[good.url], files=FAKE_DIGESTS, progress=False)
    assert (tmp_path / "file0.gz").read_bytes() == FAKE["file0"]
    assert good.requests == ["/mnist/file0.gz"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file0.gz", "file1.gz"]


@pytest.mark.parametrize("failure", ["dead", "404", "truncated", "wrong checksum"])
def test_a_bad_mirror_is_skipped_for_the_next(tmp_path, mirrors, failure):
    if failure == "dead":
        bad_url = dead_url()
    elif failure == "404":
        bad_url = mirrors({}).url
    elif failure == "truncated":
        bad_url = mirrors(served(), truncate=served()).url
    else:
        bad_url = mirrors({path: data[::-1] for path, data in served().items()}).url
    good = mirrors(served())
    datasets.download_mnist(
        tmp_path, mirrors=[bad_url, good.url], files=FAKE_DIGESTS, progress=False, timeout=5
    )
    for name, data in FAKE.items():
        assert (tmp_path / f"{name}.gz").read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file0.gz", "file1.gz"]  # no temporaries


def test_no_mirror_works_fails_fast_saying_where_to_put_the_files(tmp_path, mirrors):
    bad = mirrors(served(), truncate=served())
    with pytest.raises(OSError, match=r"could not download file0\.gz: .*truncated.*by hand"):
        datasets.download_mnist(
            tmp_path / "new", mirrors=[dead_url(), bad.url], files=FAKE_DIGESTS, progress=False
        )
    assert not (tmp_path / "new" / "file0.gz").exists()


def test_load_mnist_downloads_the_real_files_into_the_cache(
    tmp_path, mirrors, mnist_env, monkeypatch
):
    # The real files, served from FASTBP_DATA by a mirror on 127.0.0.1.
    real = {f"/mnist/{name}.gz": (mnist_env / f"{name}.gz").read_bytes() for name in
            datasets.MNIST_FILES}  # fmt: skip
    mirror = mirrors(real)
    cache = tmp_path / "cache"
    monkeypatch.delenv("FASTBP_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    (X, y), (_, y_test) = datasets.load_mnist(download=True, mirrors=[mirror.url])
    assert X.shape == (60000, 784) and y_test.shape == (10000,)
    assert sorted(p.name for p in (cache / "fastbp" / "mnist").iterdir()) == sorted(
        f"{n}.gz" for n in datasets.MNIST_FILES
    )
    assert np.array_equal(y[:10], [5, 0, 4, 1, 9, 2, 1, 3, 1, 4])
    assert len(mirror.requests) == 4
