"""Every bad input ends the same way: exit code 2, one `error:` line naming the place, no run.

Each case runs the real CLI in a subprocess (`python -m job train|submit`), with HOME in a
temp folder and no KAGGLE_* variables, so no credentials are found. The CSV cases corrupt
one thing in a copy of one small valid data folder. Every case in the train table also
passes `--set data.val_fraction=0.01`, which 100 examples cannot split: a case whose CSVs
parse stops right there (that error is the proof that they parsed), so no case ever
trains, and a corruption that slipped through would show up as that message, not as a run.
`python -m job train` imports TensorFlow (~3 s) before it reads the config, so the train
cases run side by side; the cases beyond the sweep CI runs are marked slow.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from helpers.fs_checks import nobody_can_write
from helpers.csv_files import TEST_HEADER, TRAIN_HEADER, csv_text, make_images

REPO = Path(__file__).resolve().parent.parent


def smoke_line(prefix: str) -> int:
    """The line of configs/smoke.yaml starting with `prefix` (messages name lines)."""
    lines = (REPO / "configs/smoke.yaml").read_text().splitlines()
    return next(i for i, line in enumerate(lines, start=1) if line.startswith(prefix))


# An unclosed `models: [...` is reported at the next key, `arch:`.
MODELS_LINE, ARCH_LINE = smoke_line("models:"), smoke_line("arch:")
SMOKE = REPO / "configs" / "smoke.yaml"
N_TRAIN, N_TEST = 100, 10
STOP_AFTER_PARSING = "data.val_fraction=0.01"
PARSED = ("error: data.val_fraction: 0.01 of 100 examples leaves 1 for validation and 99 for "
          "training; each needs one of each of the 10 digits, so change data.val_fraction or "
          "use more data")


def job_env(home: Path) -> dict[str, str]:
    """This environment without Kaggle credentials, with the checkout importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAGGLE_")}
    env.update(HOME=str(home), PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("XDG_CONFIG_HOME", None)
    return env


def run_job(folder: Path, *args: str) -> subprocess.CompletedProcess:
    """`python -m job ARGS` in `folder`, as a user without credentials runs it."""
    (folder / "home").mkdir(exist_ok=True)
    return subprocess.run([sys.executable, "-m", "job", *args], cwd=folder,
                          env=job_env(folder / "home"), capture_output=True, text=True,
                          timeout=300)


def snapshot(folder: Path) -> dict[str, tuple]:
    """Every path under `folder` with its size and modification time."""
    return {str(p.relative_to(folder)): (p.is_symlink(), p.lstat().st_size, p.lstat().st_mtime_ns)
            for p in folder.rglob("*")}


def assert_one_error_line(result: subprocess.CompletedProcess, message: str | None = None):
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    if message is not None:
        assert lines[0] == message


# --- the valid data every case starts from -----------------------------------------------

LABELS = np.arange(N_TRAIN, dtype=np.uint8) % 10
TRAIN_IMAGES, TEST_IMAGES = make_images(N_TRAIN, seed=3), make_images(N_TEST, seed=4)
TRAIN = csv_text(TRAIN_HEADER, np.column_stack([LABELS, TRAIN_IMAGES]).tolist()).encode()
TEST = csv_text(TEST_HEADER, TEST_IMAGES.tolist()).encode()


def set_cell(line: int, column: int, value: bytes) -> Callable[[bytes], bytes]:
    """Set the cell at 1-based `line`, 0-based `column`."""
    def edit(raw: bytes) -> bytes:
        lines = raw.split(b"\n")
        cells = lines[line - 1].split(b",")
        cells[column] = value
        lines[line - 1] = b",".join(cells)
        return b"\n".join(lines)
    return edit


def edit_line(line: int, change: Callable[[bytes], bytes]) -> Callable[[bytes], bytes]:
    def edit(raw: bytes) -> bytes:
        lines = raw.split(b"\n")
        lines[line - 1] = change(lines[line - 1])
        return b"\n".join(lines)
    return edit


def cut_mid_last_row(raw: bytes) -> bytes:
    """A download that broke off: the last row ends one digit into its 401st value."""
    last = raw.rstrip(b"\n").rfind(b"\n") + 1
    cells = raw[last:].split(b",")
    return raw[:last] + b",".join(cells[:400]) + b"," + cells[400][:1]


@dataclass(frozen=True)
class Case:
    """One bad input: files to corrupt, the command's extra arguments, the one line expected.

    `message` may name <data>, <config> and <case>: the case's data folder, its own config
    file and its folder. None expects the PARSED stop, i.e. the input is accepted.
    """
    id: str
    message: str | None
    train: Callable[[bytes], bytes] | None = None
    test: Callable[[bytes], bytes] | None = None
    missing: tuple[str, ...] = ()
    config: Callable[[str], str] | None = None     # edits smoke.yaml into <config>
    args: tuple[str, ...] = ()
    stop_after_parsing: bool = True
    slow: bool = False      # beyond the sweep CI runs: one more TensorFlow import each


CSV_CASES = [
    Case("valid (control)", None),
    Case("train: truncated mid-row", "error: <data>/train.csv line 101: expected 785 values, "
         "found 401", train=cut_mid_last_row),
    Case("train: wrong header", 'error: <data>/train.csv line 1: expected header '
         'label,pixel0..pixel783, found "Label,pixel0,pixel1,pixel2,pixel3,pixel4,pixel5,'
         'pixel6,pi..."', train=lambda raw: b"L" + raw[1:]),
    Case("train: test.csv in its place", 'error: <data>/train.csv line 1: expected header '
         'label,pixel0..pixel783, found "pixel0,pixel1,pixel2,pixel3,pixel4,pixel5,pixel6,'
         'pixel7,p..."', train=lambda raw: TEST, slow=True),
    Case("train: short row", "error: <data>/train.csv line 10: expected 785 values, found 784",
         train=edit_line(10, lambda line: line.rsplit(b",", 1)[0])),
    Case("train: long row", "error: <data>/train.csv line 20: expected 785 values, found 786",
         train=edit_line(20, lambda line: line + b",0")),
    Case("train: blank line", "error: <data>/train.csv line 31: expected 785 values, found an "
         "empty line", train=edit_line(31, lambda line: b"\n" + line), slow=True),
    Case("train: text in a pixel", 'error: <data>/train.csv line 30: column pixel99: expected '
         'an integer 0..255, found "abc"', train=set_cell(30, 100, b"abc")),
    Case("train: negative pixel", "error: <data>/train.csv line 40: column pixel0: expected an "
         "integer 0..255, found -1", train=set_cell(40, 1, b"-1")),
    Case("train: pixel 256", "error: <data>/train.csv line 50: column pixel783: expected an "
         "integer 0..255, found 256", train=set_cell(50, 784, b"256")),
    Case("train: label 10", "error: <data>/train.csv line 60: column label: expected a digit "
         "0..9, found 10", train=set_cell(60, 0, b"10")),
    Case("train: NaN", 'error: <data>/train.csv line 70: column pixel399: expected an integer '
         '0..255, found "NaN"', train=set_cell(70, 400, b"NaN")),
    Case("train: decimal", 'error: <data>/train.csv line 71: column pixel1: expected an '
         'integer 0..255, found "12.0"', train=set_cell(71, 2, b"12.0"), slow=True),
    Case("train: empty file", "error: <data>/train.csv: file is empty; re-download the "
         "competition data", train=lambda raw: b""),
    Case("train: header only", "error: <data>/train.csv: the file has no data rows, only a "
         "header; re-download the competition data", train=lambda raw: raw.split(b"\n")[0],
         slow=True),
    Case("train: missing", "error: <data>/train.csv: file not found; put the competition's "
         "train.csv there or use data.source: sample", missing=("train.csv",), slow=True),
    Case("train: UTF-16", "error: <data>/train.csv line 1: expected UTF-8 text, found byte "
         "0xff at byte 1", train=lambda raw: raw.decode().encode("utf-16")),
    Case("train: latin-1 byte", "error: <data>/train.csv line 80: expected UTF-8 text, found "
         "byte 0xb0 at byte 2", train=set_cell(80, 0, b"7\xb0"), slow=True),
    Case("train: UTF-8 BOM (accepted)", None, train=lambda raw: b"\xef\xbb\xbf" + raw),
    Case("train: CRLF (accepted)", None, train=lambda raw: raw.replace(b"\n", b"\r\n"), slow=True),
    Case("test: truncated mid-row", "error: <data>/test.csv line 11: expected 784 values, "
         "found 401", test=cut_mid_last_row, slow=True),
    Case("test: pixel 300", "error: <data>/test.csv line 5: column pixel10: expected an "
         "integer 0..255, found 300", test=set_cell(5, 10, b"300"), slow=True),
    Case("test: a label column", 'error: <data>/test.csv line 1: expected header '
         'pixel0..pixel783, found "label,pixel0,pixel1,pixel2,pixel3,pixel4,pixel5,pixel6,'
         'pi..."', test=lambda raw: TRAIN, slow=True),
    Case("test: empty file", "error: <data>/test.csv: file is empty; re-download the "
         "competition data", test=lambda raw: b""),
    Case("test: UTF-8 BOM (accepted)", None, test=lambda raw: b"\xef\xbb\xbf" + raw, slow=True),
]


def replace(old: str, new: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        assert old in text, old
        return text.replace(old, new, 1)
    return edit


CONFIG_CASES = [
    Case("config: unknown key", "error: <config>: unknown key train.epoch (did you mean "
         "train.epochs?)", config=replace("  epochs: 3 ", "  epoch: 3 ")),
    Case("config: unknown key (--set)", "error: --set: unknown key arch.cnn.filter (did you "
         "mean arch.cnn.filters?)", args=("--set", "arch.cnn.filter=[4]"), slow=True),
    Case("config: wrong type", 'error: <config>: train.batch_size: expected an integer >= 1, '
         'got "sixty-four"', config=replace("batch_size: 64 ", "batch_size: sixty-four "),
         slow=True),
    Case("config: wrong type (--set)", 'error: --set arch.cnn.batch_norm: expected true or '
         'false, got "on please"', args=("--set", "arch.cnn.batch_norm=on please")),
    Case("config: out of range", "error: <config>: arch.cnn.kernel_size: expected an integer "
         "in [1, 28], got 29", config=replace("kernel_size: 3 ", "kernel_size: 29 ")),
    Case("config: out of range (--set)", "error: --set train.learning_rate: expected a number "
         "> 0, got 0", args=("--set", "train.learning_rate=0"), slow=True),
    Case("config: invalid YAML", f"error: <config> line {ARCH_LINE}: invalid YAML: "
         "expected ',' or ']', but got '<scalar>' (while parsing a flow sequence that starts "
         f"on line {MODELS_LINE})",
         config=replace("cnn-torch]", "cnn-torch")),
    Case("config: tab indentation", "error: <config> line 9: invalid YAML: found character "
         "'\\t' that cannot start any token", config=replace("\n  dir:", "\n\tdir:"), slow=True),
    Case("config: empty file", "error: <config>: config file is empty; copy "
         "configs/default.yaml to start", config=lambda text: "# nothing yet\n"),
    Case("config: not a mapping", "error: <config>: expected a mapping of keys at the top "
         "level, got str", config=lambda text: "smoke\n", slow=True),
    Case("config: missing file", "error: <case>/nope.yaml: config file not found",
         args=("--config", "<case>/nope.yaml"), slow=True),
    Case("config: unknown model", 'error: --set models[1]: expected one of ffn-tf | ffn-keras '
         '| ffn-torch | cnn-tf | cnn-keras | cnn-torch | lstm-tf | lstm-keras | lstm-torch, '
         'got "cnn-jax" (did you mean cnn-keras?)',
         args=("--set", "models=[ffn-tf, cnn-jax]")),
    # Rules across keys: decided by the config alone, so refused before any run or data.
    Case("config: too many pooled blocks", "error: --set arch.cnn.filters: 5 pooled blocks "
         "shrink the 28x28 image to nothing; use at most 4 blocks or set arch.cnn.pooling: none",
         args=("--set", "arch.cnn.filters=[8, 8, 8, 8, 8]")),
    Case("config: ensemble of an untrained model", "error: --set ensemble.members: lstm-tf not "
         "in `models`; an ensemble averages models the run trains",
         args=("--set", "ensemble.members=[cnn-tf, lstm-tf]")),
    Case("config: half a bag", "error: --set ensemble.bag_copies: set both ensemble.bag_model "
         "and ensemble.bag_copies (2 or more), or neither",
         args=("--set", "ensemble.bag_copies=3"), slow=True),
    Case("config: Keras across workers", "error: --set runtime.distribute: ffn-keras, cnn-keras "
         "cannot train under MultiWorkerMirroredStrategy (Keras 3's fit fails across workers: "
         "keras-team/keras#20585, tensorflow/tensorflow#72388): train only the -tf models "
         "across machines, or unset "
         "TF_CONFIG (runtime.distribute: mirrored uses every GPU of one machine in both TF "
         "styles)", args=("--set", "runtime.distribute=multi_worker")),
    Case("config: torch across GPUs", "error: --set runtime.distribute: ffn-torch, cnn-torch "
         "train on one device: the torch style has no data parallelism (mirrored is for the -tf "
         "and -keras models); set runtime.distribute: none, or train the torch models in a run "
         "of their own", args=("--set", "runtime.distribute=mirrored")),
    Case("config: bad message template", "error: --set kaggle.message: invalid template "
         "(KeyError: 'score'); placeholders: {run_id}, {best}, {val_accuracy}, {epochs}, "
         "{config}", args=("--set", "kaggle.message={run_id} {score}"), slow=True),
]

TRAIN_CASES = CSV_CASES + CONFIG_CASES


def train_args(case: Case, folder: Path) -> list[str]:
    """The case's `python -m job train` arguments: the smoke config on its own folders."""
    config = str(folder / "c.yaml") if case.config else str(SMOKE)
    args = ["train", "--config", config, "--set", "data.source=local",
            "--set", f"data.dir={folder / 'data'}", "--set", f"output.runs_dir={folder / 'runs'}"]
    extra = [a.replace("<case>", str(folder)) for a in case.args]
    if "--config" in extra:
        at = extra.index("--config")
        args[2] = extra.pop(at + 1)
        extra.pop(at)
    return args + extra + (["--set", STOP_AFTER_PARSING] if case.stop_after_parsing else [])


def prepare(case: Case, folder: Path) -> None:
    """The valid data folder, one file corrupted; a runs folder with an older run in it."""
    data = folder / "data"
    data.mkdir(parents=True)
    (data / "train.csv").write_bytes(case.train(TRAIN) if case.train else TRAIN)
    (data / "test.csv").write_bytes(case.test(TEST) if case.test else TEST)
    for name in case.missing:
        (data / name).unlink()
    if case.config:
        (folder / "c.yaml").write_text(case.config(SMOKE.read_text()))
    old = folder / "runs" / "20260101T000000Z-smoke"
    old.mkdir(parents=True)
    (old / "manifest.json").write_text('{"status": "complete"}\n')
    (folder / "runs" / "latest").symlink_to(old.name)


def selected_ids(request, cases: list[Case]) -> set[str]:
    """The cases whose tests this session runs (so `-k` does not pay for all of them)."""
    ids = {item.callspec.params["case"].id for item in request.session.items
           if getattr(item, "module", None) is request.module and hasattr(item, "callspec")
           and isinstance(item.callspec.params.get("case"), Case)}
    return ids or {case.id for case in cases}


@pytest.fixture(scope="module")
def outcomes(request, tmp_path_factory):
    """Every selected train case run side by side: id -> (folder, result, runs before)."""
    root = tmp_path_factory.mktemp("bad-inputs")
    wanted = selected_ids(request, TRAIN_CASES)
    cases = [case for case in TRAIN_CASES if case.id in wanted]
    folders, before = {}, {}
    for n, case in enumerate(cases):
        folders[case.id] = root / f"case{n:02d}"
        prepare(case, folders[case.id])
        before[case.id] = snapshot(folders[case.id] / "runs")

    def run(case: Case) -> subprocess.CompletedProcess:
        return run_job(folders[case.id], *train_args(case, folders[case.id]))

    with ThreadPoolExecutor(min(8, len(os.sched_getaffinity(0)))) as pool:
        results = dict(zip([c.id for c in cases], pool.map(run, cases)))
    return {cid: (folders[cid], results[cid], before[cid]) for cid in results}


def expected_line(case: Case, folder: Path) -> str:
    if case.message is None:
        return PARSED
    return (case.message.replace("<data>", str(folder / "data"))
            .replace("<config>", str(folder / "c.yaml")).replace("<case>", str(folder)))


@pytest.mark.parametrize("case", [
    pytest.param(case, id=case.id, marks=[pytest.mark.slow] if case.slow else [])
    for case in TRAIN_CASES])
def test_bad_train_input_is_one_line_and_writes_no_run(outcomes, case):
    folder, result, runs_before = outcomes[case.id]
    assert_one_error_line(result, expected_line(case, folder))
    assert snapshot(folder / "runs") == runs_before      # no new run folder, nothing touched
    cached = sorted((folder / "data" / ".cache").glob("arrays-*.npz"))
    if case.message is None:   # accepted: parsed into the same arrays as the valid files
        [npz] = cached
        with np.load(npz) as arrays:
            np.testing.assert_array_equal(arrays["train_images"], TRAIN_IMAGES)
            np.testing.assert_array_equal(arrays["train_labels"], LABELS)
            np.testing.assert_array_equal(arrays["test_images"], TEST_IMAGES)
    else:
        assert cached == []   # a file that does not parse leaves no cache either


# --- the runs folder: refused before training ---------------------------------------------

def runs_dir_case(tmp_path: Path, runs_dir: str) -> subprocess.CompletedProcess:
    """Valid data that splits, so only the runs folder can stop the job before training."""
    prepare(Case("runs", None), tmp_path)
    return run_job(tmp_path, "train", "--config", str(SMOKE), "--set", "data.source=local",
                   "--set", f"data.dir={tmp_path / 'data'}", "--set",
                   f"output.runs_dir={runs_dir.format(tmp=tmp_path)}")


def test_a_file_as_runs_folder_is_refused_before_training(tmp_path):
    result = runs_dir_case(tmp_path, "{tmp}/data/train.csv")
    assert_one_error_line(result)
    assert f"{tmp_path}/data/train.csv: " in result.stderr
    assert "output.runs_dir" in result.stderr
    assert "training" not in result.stdout
    assert (tmp_path / "data" / "train.csv").read_bytes() == TRAIN


@pytest.mark.skipif(not Path("/sys").is_dir() or not nobody_can_write(Path("/sys")),
                    reason="needs /sys, a folder nobody (root included) can write into")
def test_a_runs_folder_nobody_can_write_into_is_refused_before_training(tmp_path):
    result = runs_dir_case(tmp_path, "/sys/job-runs")
    assert_one_error_line(result)
    assert "error: /sys/job-runs: " in result.stderr and "output.runs_dir" in result.stderr
    assert "training" not in result.stdout


FULL_DISK = ("import shutil, sys; shutil.disk_usage = "     # 1 MB free of 1 TB
             "lambda path: shutil._ntuple_diskusage(2**40, 2**40 - 2**20, 2**20); "
             "from job.cli import main; sys.exit(main())")


def test_a_full_disk_is_refused_before_the_data_is_read(tmp_path):
    prepare(Case("runs", None), tmp_path)
    (tmp_path / "home").mkdir()
    result = subprocess.run(
        [sys.executable, "-c", FULL_DISK, "train", "--config", str(SMOKE),
         "--set", "data.source=local", "--set", f"data.dir={tmp_path / 'data'}",
         "--set", f"output.runs_dir={tmp_path / 'runs'}"],
        cwd=tmp_path, env=job_env(tmp_path / "home"), capture_output=True, text=True,
        timeout=300)
    assert_one_error_line(result, f"error: {tmp_path}/runs: only 1 MB free on its disk, a run "
                                  "needs 256 MB; free some space or set output.runs_dir to "
                                  "another disk")
    assert not (tmp_path / "data" / ".cache").exists()


# --- submit: a fabricated run folder with one thing wrong -----------------------------------

TEST_ROWS = 5
DAMAGED = "the run folder is damaged or not the job's: train a new run"
VALID_SUBMISSION = "ImageId,Label\n1,7\n2,2\n3,1\n4,0\n5,4\n"
MANIFEST = {"status": "complete", "config": "smoke", "data": {"source": "kaggle",
            "test_rows": TEST_ROWS}}
METRICS = {"best": "cnn-keras", "models": [{"name": "cnn-keras", "val_accuracy": 0.9876,
                                            "epochs_run": 3}]}


def fabricate_run(runs: Path, manifest: dict | None = None, metrics: dict | None = None,
                  submission: str | None = VALID_SUBMISSION) -> Path:
    run = runs / "20260102T030405Z-smoke"
    run.mkdir(parents=True)
    (run / "manifest.json").write_text(json.dumps(MANIFEST if manifest is None else manifest))
    (run / "metrics.json").write_text(json.dumps(METRICS if metrics is None else metrics))
    shutil.copy(SMOKE, run / "config.yaml")
    if submission is not None:
        (run / "submission.csv").write_text(submission)
    return run


def with_status(status: str) -> dict:
    return {**MANIFEST, "status": status}


SUBMIT_CASES = [  # (id, what to change, the line expected; {run} is the run folder)
    ("wrong header", dict(submission=VALID_SUBMISSION.replace("ImageId", "Id")),
     'error: {run}/submission.csv line 1: expected header ImageId,Label, found "Id,Label"'),
    ("missing row", dict(submission=VALID_SUBMISSION.replace("5,4\n", "")),
     "error: {run}/submission.csv: expected 5 prediction rows (one per test image), found 4"),
    ("extra row", dict(submission=VALID_SUBMISSION + "6,1\n"),
     "error: {run}/submission.csv: expected 5 prediction rows (one per test image), found 6"),
    ("bad ImageId", dict(submission=VALID_SUBMISSION.replace("3,1", "03,1")),
     'error: {run}/submission.csv line 4: expected ImageId 3, found "03"'),
    ("rows out of order", dict(submission=VALID_SUBMISSION.replace("2,2\n3,1", "3,1\n2,2")),
     'error: {run}/submission.csv line 3: expected ImageId 2, found "3"'),
    ("label 10", dict(submission=VALID_SUBMISSION.replace("4,0", "4,10")),
     'error: {run}/submission.csv line 5: expected a label 0..9, found "10"'),
    ("label missing", dict(submission=VALID_SUBMISSION.replace("4,0", "4")),
     'error: {run}/submission.csv line 5: expected a label 0..9, found ""'),
    ("empty file", dict(submission=""),
     "error: {run}/submission.csv line 1: expected header ImageId,Label, found an empty file"),
    ("no submission.csv", dict(submission=None), "error: {run}/submission.csv: file not found"),
    ("incomplete run", dict(manifest=with_status("running")),
     "error: {run}: run is running, not complete; submit a finished run"),
    ("failed run", dict(manifest=with_status("failed")),
     "error: {run}: run is failed, not complete; submit a finished run"),
    ("sample run", dict(manifest={**MANIFEST, "data": {"source": "sample", "test_rows": 5}}),
     "error: {run}: trained on sample data, not the competition's: its predictions are not "
     "for Kaggle's test set; train with data.source: kaggle (or auto with credentials) and "
     "submit that run"),
    ("manifest without test_rows", dict(manifest={**MANIFEST, "data": {"source": "kaggle"}}),
     "error: {run}/manifest.json: data.test_rows: expected the number of test images, found "
     "nothing; " + DAMAGED),
    ("metrics without the best model", dict(metrics={"best": "cnn-keras", "models": []}),
     "error: {run}/metrics.json: no scores for the best model cnn-keras; " + DAMAGED),
]


@pytest.mark.parametrize("change, message", [c[1:] for c in SUBMIT_CASES],
                         ids=[c[0] for c in SUBMIT_CASES])
def test_bad_submission_is_one_line_and_uploads_nothing(tmp_path, change, message):
    run = fabricate_run(tmp_path / "runs", **change)
    before = snapshot(tmp_path / "runs")
    result = run_job(tmp_path, "submit", "--run", str(run), "--dry-run")
    assert_one_error_line(result, message.format(run=run))
    assert snapshot(tmp_path / "runs") == before


def test_the_fabricated_run_passes_when_nothing_is_wrong(tmp_path):
    run = fabricate_run(tmp_path / "runs")
    result = run_job(tmp_path, "submit", "--run", str(run), "--dry-run")
    assert result.returncode == 0, result.stderr
    assert f'dry run: would submit {run}/submission.csv to digit-recognizer as "{run.name}: ' \
           'cnn-keras (val accuracy 0.9876)"' in result.stdout


@pytest.mark.parametrize("damage, message", [
    (lambda run: None, "error: {run}: not a run folder"),
    (lambda run: (run / "manifest.json").write_text('{"status": "compl'),
     "error: {run}/manifest.json: not valid JSON (Unterminated string starting at: line 1 "
     "column 12 (char 11)); " + DAMAGED),
    (lambda run: (run / "manifest.json").write_text("[]"),
     "error: {run}/manifest.json: expected a JSON object, found list; " + DAMAGED),
    (lambda run: (run / "metrics.json").unlink(),
     "error: {run}/metrics.json: file not found; " + DAMAGED),
    (lambda run: (run / "config.yaml").unlink(), "error: {run}/config.yaml: config file not found"),
    (lambda run: (run / "config.yaml").write_text("train: {epochs: 0}\n"),
     "error: {run}/config.yaml: train.epochs: expected an integer >= 1, got 0"),
    (lambda run: (run / "submissions.json").write_text('[{"sha256": '),
     "error: {run}/submissions.json: not a list of submissions (Expecting value: line 1 "
     "column 13 (char 12)); repair or delete it (Kaggle's submissions page lists what was "
     "sent)"),
], ids=["not a run folder", "manifest cut short", "manifest not an object",
        "metrics missing", "config missing", "config invalid", "submissions.json cut short"])
def test_a_damaged_run_folder_is_one_line(tmp_path, damage, message):
    if message == "error: {run}: not a run folder":
        run = tmp_path / "runs" / "just-a-folder"
        run.mkdir(parents=True)
        (run / "submission.csv").write_text(VALID_SUBMISSION)
    else:
        run = fabricate_run(tmp_path / "runs")
        damage(run)
    result = run_job(tmp_path, "submit", "--run", str(run), "--dry-run")
    assert_one_error_line(result, message.format(run=run))


def test_submit_without_any_run_says_to_train_first(tmp_path):
    result = run_job(tmp_path, "submit", "--dry-run")
    assert_one_error_line(result, "error: runs/latest: not a run folder (train first: make train)")


# --- every reader of a run folder: one line naming the damaged file -------------------------

CUT_SHORT = ("error: {run}/manifest.json: not valid JSON (Unterminated string starting at: "
             "line 1 column 12 (char 11)); " + DAMAGED)


@pytest.mark.parametrize("command", [("train", "--resume", "{run}"), ("report", "{run}"),
                                     ("submit", "--run", "{run}", "--dry-run")],
                         ids=["resume", "report", "submit"])
def test_a_manifest_cut_short_is_one_line_for_every_reader(tmp_path, command):
    run = fabricate_run(tmp_path / "runs")
    (run / "manifest.json").write_text('{"status": "inter')
    before = snapshot(tmp_path / "runs")
    result = run_job(tmp_path, *(part.format(run=run) for part in command))
    assert_one_error_line(result, CUT_SHORT.format(run=run))
    assert snapshot(tmp_path / "runs") == before


def test_runs_lists_a_damaged_run_as_damaged(tmp_path):
    good = fabricate_run(tmp_path / "runs")
    bad = tmp_path / "runs" / "20260102T030406Z-smoke"
    bad.mkdir()
    (bad / "manifest.json").write_text("[]")
    result = run_job(tmp_path, "runs", "--runs-dir", "runs")
    assert result.returncode == 0, result.stderr
    rows = result.stdout.splitlines()
    assert rows[1].split()[:5] == [good.name, "complete", "kaggle", "cnn-keras", "0.9876"]
    assert rows[2].split()[:2] == [bad.name, "damaged"]
    assert rows[3] == (f"damaged: runs/{bad.name}/manifest.json: expected a JSON object, "
                       f"found list; {DAMAGED}")
