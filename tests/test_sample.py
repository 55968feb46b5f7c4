"""The embedded sample: Kaggle's layout, MNIST's framing, the same bytes every time."""

import numpy as np
import pytest

from job.data import arrays as data

from job.data import sample
from job.errors import DataError

PIXELS = [f"pixel{i}" for i in range(784)]


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """One sample for the tests that only read it (generating takes about a second)."""
    return sample.ensure_sample(tmp_path_factory.mktemp("data") / "sample")


def read_csv(path):
    """The header and the integer rows of a CSV."""
    header, *lines = path.read_text().splitlines()
    return header.split(","), np.array([line.split(",") for line in lines], dtype=np.int64)


def test_files_have_kaggle_headers_and_shapes(generated):
    header, train = read_csv(generated / "train.csv")
    assert header == ["label", *PIXELS]
    header, test = read_csv(generated / "test.csv")
    assert header == PIXELS
    assert train.shape == (1437, 785) and test.shape == (360, 784)  # 80/20 of 1,797 digits
    for name in ("sample_submission.csv", "test_labels.csv"):
        header, table = read_csv(generated / name)
        assert header == ["ImageId", "Label"]
        assert table[:, 0].tolist() == list(range(1, 361))


def test_pixels_are_bytes_framed_like_mnist(generated):
    _, train = read_csv(generated / "train.csv")
    images = train[:, 1:].reshape(-1, 28, 28)
    assert images.min() == 0 and images.max() == 255
    border = np.ones((28, 28), bool)
    border[4:24, 4:24] = False
    assert not images[:, border].any()  # the digit is 20x20, centred with 4 px all round
    assert (images[:, 4:24, 4:24].reshape(len(images), -1) > 0).mean(axis=1).min() > 0.1


def test_labels_are_stratified_digits(generated):
    _, train = read_csv(generated / "train.csv")
    _, truth = read_csv(generated / "test_labels.csv")
    _, submission = read_csv(generated / "sample_submission.csv")
    assert np.bincount(train[:, 0]).min() >= 139 and np.bincount(truth[:, 1]).min() >= 35
    assert not submission[:, 1].any()


def test_load_arrays_reads_the_sample(generated):
    arrays = data.load_arrays(generated)
    assert arrays.train_images.shape == (1437, 784) and arrays.test_images.shape == (360, 784)
    assert arrays.train_labels.max() == 9
    _, truth = read_csv(generated / "test_labels.csv")
    assert len(truth) == len(arrays.test_images)
    assert data.read_sample_submission(generated / "sample_submission.csv").tolist() == \
        list(range(1, 361))


def test_same_bytes_every_time(generated, tmp_path):
    other = sample.ensure_sample(tmp_path / "again")
    for name in sample.FILES:
        assert (other / name).read_bytes() == (generated / name).read_bytes(), name


def test_a_complete_sample_is_left_untouched(generated, monkeypatch):
    before = {name: (generated / name).stat().st_mtime_ns for name in sample.FILES}
    monkeypatch.setattr(sample, "_write_sample", lambda folder: pytest.fail("regenerated"))
    assert sample.ensure_sample(generated) == generated
    assert {name: (generated / name).stat().st_mtime_ns for name in sample.FILES} == before


def test_an_incomplete_sample_is_generated_again(generated, tmp_path):
    folder = tmp_path / "sample"
    folder.mkdir()
    (folder / "train.csv").write_text("half written")
    sample.ensure_sample(folder)
    for name in sample.FILES:
        assert (folder / name).read_bytes() == (generated / name).read_bytes(), name


def test_an_interrupted_generation_leaves_nothing_behind(tmp_path, monkeypatch):
    real_write = sample.write_csv

    def write_then_stop(path, header, rows):
        if path.name == "sample_submission.csv":
            raise KeyboardInterrupt
        real_write(path, header, rows)

    monkeypatch.setattr(sample, "write_csv", write_then_stop)
    with pytest.raises(KeyboardInterrupt):
        sample.ensure_sample(tmp_path / "sample")
    assert list(tmp_path.iterdir()) == []


def test_other_files_in_an_incomplete_sample_are_not_deleted(tmp_path):
    folder = tmp_path / "sample"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match=r"sample: holds an incomplete sample and other files "
                                        r"\(notes.txt\); move them away or pick another "
                                        r"data.sample_dir"):
        sample.ensure_sample(folder)
    assert (folder / "notes.txt").read_text() == "mine"
    assert [path.name for path in tmp_path.iterdir()] == ["sample"]
