"""Competition-style CSVs for the tests of job.data (arrays, csv_reader, cache)."""

import numpy as np

PIXELS = [f"pixel{i}" for i in range(784)]
TRAIN_HEADER = ",".join(["label", *PIXELS])
TEST_HEADER = ",".join(PIXELS)


def make_images(n, seed=0):
    """Random pixels with the 0 and 255 edges included."""
    images = np.random.default_rng(seed).integers(0, 256, (n, 784), dtype=np.uint8)
    images[0, :3] = [0, 255, 7]
    return images


def csv_text(header, rows, newline="\n"):
    """A CSV with a header and integer rows, each line ended by `newline`."""
    lines = [header, *(",".join(map(str, row)) for row in rows)]
    return newline.join(lines) + newline


def write_train(path, images, labels, **kwargs):
    """Write a Kaggle train.csv; returns the path."""
    rows = np.column_stack([labels, images]).tolist()
    path.write_text(csv_text(TRAIN_HEADER, rows, **kwargs), newline="")
    return path


def write_test(path, images):
    """Write a Kaggle test.csv; returns the path."""
    path.write_text(csv_text(TEST_HEADER, images.tolist()), newline="")
    return path


def train_lines(n=10):
    """The lines of a valid train.csv with `n` rows of zeros (labels 0..9)."""
    return [TRAIN_HEADER, *(",".join([str(i % 10)] + ["0"] * 784) for i in range(n))]


def with_cell(lines, line, column, value):
    """`lines` with the cell of 1-based `line` and 0-based `column` set to `value`."""
    lines = list(lines)
    cells = lines[line - 1].split(",")
    cells[column] = value
    lines[line - 1] = ",".join(cells)
    return lines

