"""Getting Fashion-MNIST: torchvision's file list, downloaded over real HTTP from a loopback
server into the data folder, verified by MD5, stoppable and resumed; the files then load."""
from __future__ import annotations

import hashlib

import pytest

from engine.data import fashion_mnist, fashion_mnist_get
from engine.downloads.errors import ChecksumError, DownloadError
from engine.jobs import Progress
from tests.engine.loopback import LoopbackServer
from tests.idx_files import write_fashion_mnist

NAMES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


@pytest.fixture
def served(tmp_path, monkeypatch):
    """A loopback server with four small idx files, their (name, md5) list, online, data in tmp."""
    monkeypatch.setenv("PATCHWORK_HOME", str(tmp_path / "home"))
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "http_proxy", "HTTP_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    folder = write_fashion_mnist(tmp_path / "src", n_train=300, n_test=100)
    srv = LoopbackServer().start()
    resources = []
    for name in NAMES:
        data = (folder / name).read_bytes()
        srv.files[f"/fm/{name}"] = data
        resources.append((name, hashlib.md5(data).hexdigest()))
    yield srv, resources
    srv.stop()


def drive(gen):
    events = []
    try:
        while True:
            events.append(next(gen))
    except StopIteration as stop:
        return stop.value, events


def test_torchvision_list_is_the_one_used_by_default():
    mirrors, resources = fashion_mnist_get.torchvision_resources()
    assert mirrors and [n for n, _ in resources] == list(NAMES)
    assert all(len(md5) == 32 for _, md5 in resources)


def test_download_lands_in_the_data_folder_and_loads(served):
    srv, resources = served
    status, events = drive(fashion_mnist_get.download_job(None, mirrors=[srv.url("/fm")], resources=resources))
    raw = fashion_mnist.download_dir() / "FashionMNIST" / "raw"
    assert sorted(p.name for p in raw.iterdir()) == sorted(NAMES)
    assert status.available
    assert any(isinstance(e, Progress) and e.fraction == 1.0 for e in events)
    test = fashion_mnist.load_fashion_mnist("test", root=raw)
    assert test.images.shape == (100, 28, 28) and test.labels.max() <= 9
    srv.clear()
    drive(fashion_mnist_get.download_job(None, mirrors=[srv.url("/fm")], resources=resources))
    assert srv.seen("/fm/") == [], "complete, verified files are not fetched again"


def test_a_cut_download_resumes_where_it_stopped(served):
    srv, resources = served
    name = NAMES[0]
    srv.behaviour.cut_after[f"/fm/{name}"] = 2_000
    with pytest.raises(DownloadError):
        drive(fashion_mnist_get.download_job(None, mirrors=[srv.url("/fm")], resources=resources))
    srv.clear()
    drive(fashion_mnist_get.download_job(None, mirrors=[srv.url("/fm")], resources=resources))
    assert [r.header("Range") for r in srv.seen(f"/fm/{name}")] == ["bytes=2000-"]


def test_a_file_that_is_not_torchvisions_is_refused_and_deleted(served):
    srv, resources = served
    bad = [(n, "0" * 32 if i == 1 else md5) for i, (n, md5) in enumerate(resources)]
    with pytest.raises(ChecksumError) as info:
        drive(fashion_mnist_get.download_job(None, mirrors=[srv.url("/fm")], resources=bad))
    assert NAMES[1] in str(info.value)
    assert not (fashion_mnist.download_dir() / "FashionMNIST" / "raw" / NAMES[1]).exists()


def test_a_dead_mirror_falls_through_to_the_next(served):
    srv, resources = served
    srv.behaviour.status["/dead/" + NAMES[0]] = 503
    status, _ = drive(fashion_mnist_get.download_job(None, mirrors=[srv.url("/dead"), srv.url("/fm")],
                                                     resources=resources))
    assert status.available


def test_missing_dataset_message_names_both_routes(monkeypatch, tmp_path):
    monkeypatch.setattr(fashion_mnist, "DEBIAN_DIR", tmp_path / "none")
    monkeypatch.delenv("PATCHWORK_FASHION_MNIST", raising=False)
    monkeypatch.setenv("PATCHWORK_HOME", str(tmp_path / "home"))
    st = fashion_mnist_get.status()
    assert not st.available and "dataset-fashion-mnist" in st.message
    with pytest.raises(fashion_mnist.DatasetMissingError) as info:
        fashion_mnist.load_fashion_mnist("test")
    assert "Get Fashion-MNIST" in str(info.value) and "dataset-fashion-mnist" in str(info.value)
