"""Downloads against a real loopback HTTP server: progress, cancel, resume, errors, HF cache layout.

No part of the download path is mocked: engine.downloads speaks HTTP over real sockets to
tests/engine/loopback.py, writes real files, and the HF layout is checked with
huggingface_hub's own cache lookups. HF_ENDPOINT, HF_HOME and TORCH_HOME point at the
loopback server and tmp folders, so nothing here can reach a real hub.
"""
from __future__ import annotations

import hashlib
import os
import random
import socket
import threading
import time
from pathlib import Path

import pytest

from engine.catalogue.entry import ModelEntry, Source
from engine.catalogue.locate import DOWNLOADING, FAILED, NEEDS_DOWNLOAD, READY, set_live_state, state_of
from engine.downloads import caches
from engine.downloads.errors import (
    ChecksumError,
    ConnectionRefusedDownloadError,
    DiskFullError,
    DownloadError,
    HTTPStatusError,
    OfflineError,
)
from engine.downloads.hf import download_hf_file, download_hf_snapshot
from engine.downloads.http import download_file
from engine.catalogue.download_jobs import delete_source, download_source
from engine.jobs import JobState, Progress
from tests.engine.loopback import LoopbackServer

WAIT = 20.0


def payload(n: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(n)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def run(gen, deadline: float = WAIT):
    """Drive a job-style generator to its end: (result, [(time, Progress)])."""
    events = []
    t_end = time.monotonic() + deadline
    try:
        while True:
            item = next(gen)
            events.append((time.monotonic(), item))
            assert time.monotonic() < t_end, "download did not finish in time"
    except StopIteration as stop:
        return stop.value, events


def fractions(events) -> list[float]:
    return [p.fraction for _, p in events if isinstance(p, Progress) and p.fraction is not None]


@pytest.fixture
def server():
    srv = LoopbackServer().start()
    yield srv
    srv.stop()


@pytest.fixture(autouse=True)
def sandbox(tmp_path, monkeypatch, server):
    """Every cache in tmp, the hub on loopback, no proxy, no token, online."""
    monkeypatch.setenv("HF_ENDPOINT", server.url())
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    for var in ("HF_HUB_CACHE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN",
                "HF_TOKEN_PATH", "http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy",
                "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    return tmp_path


@pytest.fixture(scope="module")
def engine():
    from engine.core import Engine

    eng = Engine(device="cpu")
    eng.start()
    assert eng.wait_ready(60), "engine did not become ready"
    yield eng
    eng.shutdown()


# --------------------------------------------------------------------------- plain files
def test_progress_events_verified_file_and_no_part(server, tmp_path):
    data = payload(1_000_000)
    server.files["/w/model.bin"] = data
    server.behaviour.throttle["/w/model.bin"] = (50_000, 0.03)  # ~0.6 s, so several ticks
    dest = tmp_path / "out" / "model.bin"

    t0 = time.monotonic()
    result, events = run(download_file(server.url("/w/model.bin"), dest, sha256=sha(data)))
    elapsed = time.monotonic() - t0

    assert result == dest and dest.read_bytes() == data
    assert not (tmp_path / "out" / "model.bin.part").exists()
    fr = fractions(events)
    assert fr == sorted(fr) and fr[-1] == 1.0 and len(fr) >= 3
    last = events[-1][1]
    assert last.done == last.total == len(data)
    assert all(p.total in (None, len(data)) for _, p in events)
    assert any("MB/s" in p.message and " / 1.0 MB" in p.message for _, p in events)
    # at most ~10 events a second, and never more than 0.2 s apart
    assert len(events) <= elapsed * 10 + 3
    times = [t0] + [t for t, _ in events]
    assert max(b - a for a, b in zip(times, times[1:])) < 0.25


def test_keeps_yielding_while_the_server_is_silent(server, tmp_path):
    server.files["/slow.bin"] = payload(1000)
    server.behaviour.delay["/slow.bin"] = 0.8
    t0 = time.monotonic()
    _, events = run(download_file(server.url("/slow.bin"), tmp_path / "slow.bin"))
    times = [t0] + [t for t, _ in events]
    assert len(events) >= 5
    assert max(b - a for a, b in zip(times, times[1:])) < 0.25


def test_cancel_through_the_engine(engine, server, tmp_path):
    data = payload(2_000_000, seed=1)
    server.files["/big.bin"] = data
    server.behaviour.throttle["/big.bin"] = (16_384, 0.02)  # ~2.5 s in all
    model_id = "test-cancel-model"
    source = Source("url", server.url("/big.bin"), "big.bin", sha256=sha(data))
    entry = _entry(model_id, source)
    dest = caches.torch_checkpoints_dir() / "big.bin"
    part = dest.parent / "big.bin.part"

    def job(ctx):
        return (yield from download_source(source, model_id))

    handle = engine.submit(job, name="download big.bin")
    t_end = time.monotonic() + WAIT
    while not (part.exists() and part.stat().st_size > 100_000):
        assert time.monotonic() < t_end and not handle.wait(0), "download did not start"
        time.sleep(0.01)
    assert state_of(entry).state == DOWNLOADING
    t0 = time.monotonic()
    handle.cancel()
    assert handle.wait(1.0), "cancel did not land within 1 s"
    assert time.monotonic() - t0 < 1.0
    assert handle.state is JobState.CANCELLED
    assert not dest.exists()
    assert 0 < part.stat().st_size < len(data)
    assert state_of(entry).state == NEEDS_DOWNLOAD  # the live state was cleared
    # the network thread stops too (its socket was shut down)
    t_end = time.monotonic() + 1.0
    while any(t.name == "patchwork-download" for t in threading.enumerate()):
        assert time.monotonic() < t_end, "download thread still running after cancel"
        time.sleep(0.02)


def test_cancel_while_the_server_is_silent_stops_the_network_thread(server, tmp_path):
    server.files["/quiet.bin"] = payload(300_000, seed=16)
    server.behaviour.stall_after["/quiet.bin"] = (50_000, 5.0)
    gen = download_file(server.url("/quiet.bin"), tmp_path / "quiet.bin")
    part = tmp_path / "quiet.bin.part"
    t_end = time.monotonic() + WAIT
    while not (part.exists() and part.stat().st_size == 50_000):
        assert time.monotonic() < t_end
        next(gen)
    for _ in range(3):  # the server is silent now; the generator still yields
        assert isinstance(next(gen), Progress)
    t0 = time.monotonic()
    gen.close()  # what the engine does on cancel
    while any(t.name == "patchwork-download" for t in threading.enumerate()):
        assert time.monotonic() - t0 < 1.0, "download thread still blocked on the silent server"
        time.sleep(0.02)
    assert part.stat().st_size == 50_000 and not (tmp_path / "quiet.bin").exists()


def test_token_follows_redirects_on_the_same_host_only(server, tmp_path):
    data = payload(100_000, seed=17)
    server.files["/real.bin"] = data
    server.behaviour.redirect["/same"] = "http://127.0.0.1:{port}/real.bin"
    server.behaviour.redirect["/other"] = "http://localhost:{port}/real.bin"
    auth = {"Authorization": "Bearer secret"}
    run(download_file(server.url("/same"), tmp_path / "a.bin", sha256=sha(data), headers=auth))
    run(download_file(server.url("/other"), tmp_path / "b.bin", sha256=sha(data), headers=auth))
    assert (tmp_path / "a.bin").read_bytes() == data == (tmp_path / "b.bin").read_bytes()
    got = [(r.header("Host").split(":")[0], r.header("Authorization")) for r in server.seen("/real.bin")]
    assert got == [("127.0.0.1", "Bearer secret"), ("localhost", None)]


def test_resume_after_interruption(server, tmp_path):
    data = payload(800_000, seed=2)
    server.files["/r.bin"] = data
    server.behaviour.cut_after["/r.bin"] = 300_000
    dest = tmp_path / "r.bin"
    part = tmp_path / "r.bin.part"

    with pytest.raises(DownloadError) as info:
        run(download_file(server.url("/r.bin"), dest, sha256=sha(data)))
    assert "resume" in str(info.value)
    assert not dest.exists()
    assert part.stat().st_size == 300_000

    server.clear()
    result, events = run(download_file(server.url("/r.bin"), dest, sha256=sha(data)))
    assert [r.header("Range") for r in server.seen("/r.bin")] == ["bytes=300000-"]
    assert result.read_bytes() == data and not part.exists()
    assert fractions(events)[0] >= 0.37  # resumed, not restarted


def test_server_ignoring_range_restarts_from_zero(server, tmp_path):
    data = payload(300_000, seed=3)
    server.files["/nr.bin"] = data
    server.behaviour.ignore_range.add("/nr.bin")
    dest = tmp_path / "nr.bin"
    (tmp_path / "nr.bin.part").write_bytes(b"stale bytes from somewhere else" * 100)
    run(download_file(server.url("/nr.bin"), dest, sha256=sha(data)))
    assert server.seen("/nr.bin")[0].header("Range") == "bytes=3100-"
    assert dest.read_bytes() == data


def test_complete_part_is_finished_without_downloading_again(server, tmp_path):
    data = payload(200_000, seed=4)
    server.files["/c.bin"] = data
    (tmp_path / "c.bin.part").write_bytes(data)
    run(download_file(server.url("/c.bin"), tmp_path / "c.bin", sha256=sha(data)[:8]))
    assert (tmp_path / "c.bin").read_bytes() == data
    assert len(server.seen("/c.bin")) == 1  # one Range request answered 416, no body sent


def test_part_longer_than_the_file_restarts(server, tmp_path):
    data = payload(200_000, seed=5)
    server.files["/l.bin"] = data
    (tmp_path / "l.bin.part").write_bytes(payload(250_000, seed=6))
    run(download_file(server.url("/l.bin"), tmp_path / "l.bin", sha256=sha(data)))
    assert (tmp_path / "l.bin").read_bytes() == data
    assert [r.header("Range") for r in server.seen("/l.bin")] == ["bytes=250000-", None]


# --------------------------------------------------------------------------- errors
def test_404(server, tmp_path):
    with pytest.raises(HTTPStatusError) as info:
        run(download_file(server.url("/missing.bin"), tmp_path / "m.bin"))
    assert info.value.status == 404
    assert "404" in str(info.value) and server.url("/missing.bin") in str(info.value)
    assert not (tmp_path / "m.bin").exists() and not (tmp_path / "m.bin.part").exists()


def test_server_error_says_try_later(server, tmp_path):
    server.files["/e.bin"] = b"x"
    server.behaviour.status["/e.bin"] = 503
    with pytest.raises(HTTPStatusError, match="503.*try again later"):
        run(download_file(server.url("/e.bin"), tmp_path / "e.bin"))


def test_connection_refused(tmp_path):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with pytest.raises(ConnectionRefusedDownloadError) as info:
        run(download_file(f"http://127.0.0.1:{port}/x.bin", tmp_path / "x.bin"))
    assert "refused" in str(info.value) and f"127.0.0.1:{port}" in str(info.value)


def test_stalled_server_times_out_and_keeps_the_part(server, tmp_path):
    server.files["/st.bin"] = payload(400_000, seed=7)
    server.behaviour.stall_after["/st.bin"] = (100_000, 3.0)
    t0 = time.monotonic()
    with pytest.raises(DownloadError, match="no answer") as info:
        run(download_file(server.url("/st.bin"), tmp_path / "st.bin", timeout=0.5))
    assert time.monotonic() - t0 < 2.5
    assert "resume" in str(info.value)
    assert (tmp_path / "st.bin.part").stat().st_size == 100_000


def test_checksum_mismatch_deletes_the_part(server, tmp_path):
    data = payload(200_000, seed=8)
    server.files["/cs.bin"] = data
    with pytest.raises(ChecksumError) as info:
        run(download_file(server.url("/cs.bin"), tmp_path / "cs.bin", sha256="0" * 64))
    message = str(info.value)
    assert "0" * 16 in message and sha(data)[:16] in message
    assert not (tmp_path / "cs.bin").exists() and not (tmp_path / "cs.bin.part").exists()


def test_offline_mode_sends_nothing(server, tmp_path, monkeypatch):
    server.files["/o.bin"] = b"data"
    server.add_repo("org/offline", {"model.safetensors": b"weights"})
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OfflineError, match="HF_HUB_OFFLINE"):
        run(download_file(server.url("/o.bin"), tmp_path / "o.bin"))
    with pytest.raises(OfflineError, match="offline"):
        run(download_hf_file("org/offline", "model.safetensors"))
    with pytest.raises(OfflineError, match="offline"):
        run(download_hf_snapshot("org/offline", ["*.safetensors"]))
    assert server.requests == []


def test_disk_full_before_writing(server, tmp_path):
    server.files["/huge.bin"] = b"only a few bytes"
    server.behaviour.declared_length["/huge.bin"] = 10**15
    with pytest.raises(DiskFullError) as info:
        run(download_file(server.url("/huge.bin"), tmp_path / "huge.bin"))
    message = str(info.value)
    assert "1000000000.0 MB" in message and "free" in message
    assert info.value.free < 10**15
    assert not (tmp_path / "huge.bin").exists() and not (tmp_path / "huge.bin.part").exists()


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_disk_full_while_writing(server, tmp_path):
    server.files["/f.bin"] = payload(200_000, seed=9)
    (tmp_path / "f.bin.part").symlink_to("/dev/full")
    with pytest.raises(DiskFullError, match="disk full while writing") as info:
        run(download_file(server.url("/f.bin"), tmp_path / "f.bin"))
    assert "f.bin.part" in str(info.value)
    assert not (tmp_path / "f.bin").exists()


# --------------------------------------------------------------------------- Hugging Face (huggingface_hub)
def _hub_dir(tmp_path) -> Path:
    return tmp_path / "hf" / "hub"


def _leftovers(tmp_path) -> list[str]:
    """Temporary files huggingface_hub leaves in blobs/ (none, after success, failure or Stop)."""
    return sorted(p.name for p in _hub_dir(tmp_path).rglob("*.incomplete"))


def test_hf_file_lands_in_the_huggingface_hub_cache(server, tmp_path, monkeypatch):
    weights, config = payload(2_500_000, seed=10), b'{"arch": "tiny"}'
    repo = server.add_repo("org/tiny-model", {"model.safetensors": weights, "config.json": config})
    server.behaviour.throttle[f"/cdn/{sha(weights)}"] = (100_000, 0.02)  # ~0.5 s: several updates
    monkeypatch.setenv("HF_TOKEN", "hf_loopback_token")
    import huggingface_hub

    offline_at_import = huggingface_hub.constants.HF_HUB_OFFLINE  # True under CI's HF_HUB_OFFLINE=1

    path, events = run(download_hf_file("org/tiny-model", "model.safetensors"))

    assert huggingface_hub.constants.HF_HUB_OFFLINE == offline_at_import  # online only while it ran

    hub_cache = _hub_dir(tmp_path)
    repo_dir = hub_cache / "models--org--tiny-model"
    assert path == repo_dir / "snapshots" / repo.commit / "model.safetensors"
    assert path.is_symlink() and not os.path.isabs(os.readlink(path))
    assert path.resolve() == (repo_dir / "blobs" / sha(weights)).resolve()
    assert path.read_bytes() == weights
    assert (repo_dir / "refs" / "main").read_text() == repo.commit
    fr = fractions(events)
    assert fr == sorted(fr) and fr[-1] == 1.0 and any(0 < f < 1 for f in fr)
    assert events[-1][1].done == events[-1][1].total == len(weights) and "MB" in events[-1][1].message
    # the token goes to the hub, never to the CDN the hub redirects to
    head = server.seen("/resolve/", "HEAD")
    assert head and all(h.header("Authorization") == "Bearer hf_loopback_token" for h in head)
    cdn = server.seen("/cdn/", "GET")
    assert len(cdn) == 1 and cdn[0].header("Authorization") is None and cdn[0].header("Range") is None
    assert _leftovers(tmp_path) == []

    # huggingface_hub's own cache readers see the file (what timm, transformers, open_clip use)
    info = huggingface_hub.scan_cache_dir(hub_cache)
    (cached_repo,) = [r for r in info.repos if r.repo_id == "org/tiny-model"]
    (revision,) = cached_repo.revisions
    assert revision.commit_hash == repo.commit and "main" in revision.refs
    assert {f.file_name: f.size_on_disk for f in revision.files} == {"model.safetensors": len(weights)}
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    found = huggingface_hub.try_to_load_from_cache("org/tiny-model", "model.safetensors", cache_dir=hub_cache)
    assert found == str(path)
    got = huggingface_hub.hf_hub_download("org/tiny-model", "model.safetensors", local_files_only=True,
                                          cache_dir=hub_cache)
    assert Path(got) == path and Path(got).read_bytes() == weights

    server.clear()  # offline, a cached file is returned without any request
    again, _ = run(download_hf_file("org/tiny-model", "model.safetensors"))
    assert again == path and server.requests == []


def test_hf_cached_file_is_revalidated_online_without_downloading(server, tmp_path):
    data = payload(300_000, seed=18)
    server.add_repo("org/cached", {"model.safetensors": data})
    first, _ = run(download_hf_file("org/cached", "model.safetensors"))
    server.clear()
    again, _ = run(download_hf_file("org/cached", "model.safetensors"))
    assert again == first and again.read_bytes() == data
    assert server.seen("/resolve/", "HEAD") and server.seen("/cdn/") == []  # etag checked, no body


def test_hf_file_served_without_redirect(server, tmp_path):
    from tests.engine.loopback import git_blob_id

    data = payload(200_000, seed=11)
    repo = server.add_repo("org/plain", {"sub/model.bin": data}, lfs=False)
    path, _ = run(download_hf_file("org/plain", "sub/model.bin", sha256=sha(data)))
    assert path.read_bytes() == data
    assert path == caches.hf_repo_dir("org/plain") / "snapshots" / repo.commit / "sub" / "model.bin"
    assert path.resolve().name == git_blob_id(data)  # a git file's blob is named by its git id
    assert caches.hf_cached_file("org/plain", "sub/model.bin") == path


def test_hf_checksum_from_catalogue_disagreeing_with_hub(server):
    server.add_repo("org/changed", {"model.safetensors": b"new weights"})
    with pytest.raises(ChecksumError, match="changed upstream"):
        run(download_hf_file("org/changed", "model.safetensors", sha256="deadbeef"))
    assert server.seen("/cdn/") == []  # the LFS sha256 is in the HEAD answer: refused before downloading


def test_hf_checksum_verified_after_download_removes_the_file(server, tmp_path):
    import huggingface_hub

    data = payload(100_000, seed=19)
    server.add_repo("org/git-file", {"weights.bin": data}, lfs=False)  # ETag is a git id: hash the bytes
    with pytest.raises(ChecksumError, match="changed upstream") as info:
        run(download_hf_file("org/git-file", "weights.bin", sha256="0" * 64))
    assert sha(data)[:16] in str(info.value) and info.value.actual == sha(data)
    assert server.seen("/resolve/", "GET")  # it was downloaded, then refused
    assert huggingface_hub.try_to_load_from_cache("org/git-file", "weights.bin", cache_dir=_hub_dir(tmp_path)) is None
    assert not [p for p in (caches.hf_repo_dir("org/git-file") / "blobs").iterdir()]


def test_hf_missing_file_and_missing_repo(server):
    server.add_repo("org/there", {"a.bin": b"a"})
    with pytest.raises(HTTPStatusError, match="404") as info:
        run(download_hf_file("org/there", "b.bin"))
    assert "org/there/resolve/main/b.bin" in str(info.value)
    with pytest.raises(HTTPStatusError, match="401.*HF_TOKEN"):
        run(download_hf_file("org/not-there", "a.bin"))
    with pytest.raises(HTTPStatusError, match="401.*HF_TOKEN"):
        run(download_hf_snapshot("org/not-there", ["*.bin"]))


def test_hf_connection_refused_fails_fast(monkeypatch):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    t0 = time.monotonic()
    for gen in (download_hf_file("org/x", "model.safetensors"), download_hf_snapshot("org/x", ["*"])):
        with pytest.raises(ConnectionRefusedDownloadError) as info:
            run(gen)
        assert "refused" in str(info.value) and f"127.0.0.1:{port}" in str(info.value)
    assert time.monotonic() - t0 < 3.0  # not the library's ~20 s of retries


def test_hf_resume_after_a_cut(server, tmp_path):
    data = payload(3_000_000, seed=20)
    server.add_repo("org/cut", {"model.safetensors": data})
    cdn = f"/cdn/{sha(data)}"
    server.behaviour.cut_after[cdn] = 1_500_000

    path, events = run(download_hf_file("org/cut", "model.safetensors", sha256=sha(data)))

    assert path.read_bytes() == data
    ranges = [r.header("Range") for r in server.seen(cdn, "GET")]
    assert len(ranges) == 2 and ranges[0] is None
    start = int(ranges[1].removeprefix("bytes=").rstrip("-"))
    assert 0 < start <= 1_500_000  # resumed where the cut left it (in whole read chunks), not restarted
    fr = fractions(events)
    assert fr == sorted(fr) and fr[-1] == 1.0
    assert _leftovers(tmp_path) == []


def test_hf_disk_full_before_writing(server, tmp_path):
    server.add_repo("org/huge", {"model.safetensors": b"only a few bytes"})
    server.behaviour.declared_length["/org/huge/resolve/main/model.safetensors"] = 10**15
    with pytest.raises(DiskFullError) as info:
        run(download_hf_file("org/huge", "model.safetensors"))
    message = str(info.value)
    assert "1000000000.0 MB" in message and "free" in message and "HF_HOME" in message
    assert info.value.free < 10**15
    assert server.seen("/cdn/") == [] and _leftovers(tmp_path) == []


def test_hf_snapshot_with_allow_patterns(server, tmp_path):
    files = {"model_index.json": b"{}", "unet/config.json": b'{"u": 1}',
             "unet/diffusion_pytorch_model.safetensors": payload(2_000_000, seed=12),
             "README.md": b"# readme", "vae/diffusion_pytorch_model.safetensors": payload(300_000, seed=13)}
    repo = server.add_repo("org/pipeline", files)
    server.behaviour.throttle[f"/cdn/{sha(files['unet/diffusion_pytorch_model.safetensors'])}"] = (100_000, 0.02)

    folder, events = run(download_hf_snapshot("org/pipeline", ["*.json", "unet/*.safetensors"]))

    repo_dir = _hub_dir(tmp_path) / "models--org--pipeline"
    assert folder == repo_dir / "snapshots" / repo.commit
    got = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    assert got == ["model_index.json", "unet/config.json", "unet/diffusion_pytorch_model.safetensors"]
    for name in got:
        assert (folder / name).read_bytes() == files[name]
    assert (repo_dir / "refs" / "main").read_text() == repo.commit
    fr = fractions(events)
    assert fr == sorted(fr) and fr[-1] == 1.0 and any(0 < f < 1 for f in fr)
    assert events[-1][1].done == events[-1][1].total == sum(len(files[n]) for n in got)
    assert caches.hf_cached_snapshot("org/pipeline") == folder
    assert [r.path.split("?")[0] for r in server.seen("/api/")] == [
        "/api/models/org/pipeline/revision/main",  # ours: sizes for the progress total
        "/api/models/org/pipeline/revision/main", f"/api/models/org/pipeline/tree/{repo.commit}"]

    import huggingface_hub

    snap = huggingface_hub.snapshot_download("org/pipeline", allow_patterns=["*.json", "unet/*.safetensors"],
                                             local_files_only=True, cache_dir=_hub_dir(tmp_path))
    assert Path(snap) == folder
    with pytest.raises(DownloadError, match="no file of org/pipeline"):
        run(download_hf_snapshot("org/pipeline", ["*.onnx"]))


def test_hf_snapshot_stop_ends_every_file(server, tmp_path):
    files = {"a.safetensors": payload(4_000_000, seed=22), "b.safetensors": payload(4_000_000, seed=23)}
    server.add_repo("org/two", files)
    for data in files.values():
        server.behaviour.throttle[f"/cdn/{sha(data)}"] = (64_000, 0.02)
    gen = download_hf_snapshot("org/two", ["*.safetensors"])
    t_end = time.monotonic() + WAIT
    while not ((p := next(gen)).fraction and p.fraction > 0.1):
        assert time.monotonic() < t_end
    assert p.total == 8_000_000 and "MB" in p.message
    t0 = time.monotonic()
    gen.close()  # what the engine does on Stop
    assert time.monotonic() - t0 < 0.5
    while any(t.name == "patchwork-hf-download" for t in threading.enumerate()) or _leftovers(tmp_path):
        assert time.monotonic() - t0 < 3.0, "a file kept downloading after Stop"
        time.sleep(0.02)
    assert not list((caches.hf_repo_dir("org/two") / "snapshots").rglob("*.safetensors"))


def test_hf_cancel_through_the_engine(engine, server, tmp_path):
    data = payload(6_000_000, seed=21)
    server.add_repo("org/big", {"model.safetensors": data})
    cdn = f"/cdn/{sha(data)}"
    server.behaviour.throttle[cdn] = (64_000, 0.02)  # ~3 MB/s: about 2 s in all
    model_id = "test-hf-cancel-model"
    source = Source("hf", "org/big", "model.safetensors", sha256=sha(data))
    entry = _entry(model_id, source)

    handle = engine.submit(lambda ctx: download_source(source, model_id), name="download org/big")
    t_end = time.monotonic() + WAIT
    while not ((s := state_of(entry)).state == DOWNLOADING and s.fraction and s.fraction > 0.15):
        assert time.monotonic() < t_end and not handle.wait(0), "download did not start"
        time.sleep(0.01)
    t0 = time.monotonic()
    handle.cancel()
    assert handle.wait(1.0), "cancel did not land within 1 s"
    assert time.monotonic() - t0 < 1.0 and handle.state is JobState.CANCELLED
    assert state_of(entry).state == NEEDS_DOWNLOAD  # the live state was cleared
    # the worker stops on its next read (<= 1 MiB, ~0.4 s here) and huggingface_hub deletes its temporary file
    t_end = time.monotonic() + 3.0
    while any(t.name == "patchwork-hf-download" for t in threading.enumerate()) or _leftovers(tmp_path):
        assert time.monotonic() < t_end, "download thread still running after cancel"
        time.sleep(0.02)
    assert caches.hf_cached_file("org/big", "model.safetensors") is None
    fetched = len(server.seen(cdn, "GET"))

    # Download again: complete and verified. huggingface_hub 2.x restarts a stopped download from byte 0
    # (each attempt writes a process-unique temporary file that it deletes on failure).
    server.behaviour.throttle.pop(cdn)
    path = engine.submit(lambda ctx: download_source(source, model_id)).result(WAIT)
    assert path.read_bytes() == data and state_of(entry).state == READY
    assert [r.header("Range") for r in server.seen(cdn, "GET")[fetched:]] == [None]


# --------------------------------------------------------------------------- jobs
def _entry(model_id: str, source: Source) -> ModelEntry:
    """An entry for state lookups only (never added to the catalogue)."""
    return ModelEntry(id=model_id, name=model_id, family="vit", panels=("classify",), description="test",
                      licence="test", size_mb=1.0, source=source, builder="x:y")


def test_download_source_states_through_the_engine(engine, server):
    data = payload(400_000, seed=14)
    server.files["/w/weights-1234abcd.pth"] = data
    server.behaviour.throttle["/w/weights-1234abcd.pth"] = (40_000, 0.04)  # ~0.4 s
    model_id = "test-url-model"
    source = Source("url", server.url("/w/weights-1234abcd.pth"), "weights-1234abcd.pth", sha256=sha(data)[:8])
    entry = _entry(model_id, source)
    assert state_of(entry).state == NEEDS_DOWNLOAD

    def job(ctx):
        return (yield from download_source(source, model_id))

    handle = engine.submit(job)
    seen = []
    while not handle.wait(0.02):
        seen.append(state_of(entry))
    path = handle.result(WAIT)
    downloading = [s for s in seen if s.state == DOWNLOADING]
    assert downloading and any(s.fraction and 0 < s.fraction < 1 and "MB" in s.detail for s in downloading)
    assert path == caches.torch_checkpoints_dir() / "weights-1234abcd.pth" and path.read_bytes() == data
    after = state_of(entry)
    assert after.state == READY and after.path == str(path)

    removed = delete_source(source)
    assert path in removed and not path.exists()
    assert state_of(entry).state == NEEDS_DOWNLOAD

    bad = Source("url", server.url("/w/gone.pth"), "gone.pth")
    bad_entry = _entry("test-gone-model", bad)
    failed = engine.submit(lambda ctx: download_source(bad, "test-gone-model"))
    failed.wait(WAIT)
    assert failed.state is JobState.FAILED and "404" in failed.info.error.message
    state = state_of(bad_entry)
    assert state.state == FAILED and "404" in state.detail
    set_live_state(None, "test-gone-model")


def test_download_model_and_delete_model_requests(engine, server):
    from engine import catalogue
    from engine.catalogue.locate import local_path

    entry = next((e for e in catalogue.entries() if e.source.kind == "hf" and not e.source.sha256), None)
    if entry is None:
        pytest.skip("no Hugging Face entry without a published checksum in the catalogue")
    weights = payload(300_000, seed=15)
    server.add_repo(entry.source.location, {entry.source.filename: weights})  # the hub is the loopback

    path = Path(engine.submit("download_model", {"model_id": entry.id}).result(WAIT))
    assert path.read_bytes() == weights and local_path(entry) == path
    assert state_of(entry).state == READY

    key = f"{entry.id}@cpu"
    engine.submit(lambda ctx: ctx.models.get(key, object)).result(WAIT)
    assert key in dict(engine.submit(lambda ctx: ctx.models.loaded()).result(WAIT))

    removed = engine.submit("delete_model", {"model_id": entry.id}).result(WAIT)
    assert str(path) in removed and len(removed) == 2  # the snapshot link and its blob
    assert local_path(entry) is None and state_of(entry).state == NEEDS_DOWNLOAD
    assert key not in dict(engine.submit(lambda ctx: ctx.models.loaded()).result(WAIT))
    assert not list((caches.hf_repo_dir(entry.source.location) / "blobs").iterdir())


def test_download_model_unknown_id_fails_cleanly(engine):
    handle = engine.submit("download_model", {"model_id": "no-such-model"})
    handle.wait(WAIT)
    assert handle.state is JobState.FAILED and "unknown model" in handle.info.error.message
