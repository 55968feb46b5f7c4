"""The stand-in speaks enough of Kaggle's protocol for the real `kaggle` client, faults included.

The client runs in-process against a loopback KaggleStandin; env, HOME and KAGGLE_CONFIG_DIR are the
test's own (monkeypatch), and KaggleApi is re-imported under that env because its class body reads it.
"""

import hashlib
import json
import tempfile
import time
import zipfile
from datetime import datetime

import pytest
import requests

from helpers.kaggle_standin import (FAULTS, MESSAGES, PHONE_REQUIRED, KaggleStandin, KernelResult,
                                   load_kaggle_api, request_name)

COMPETITION = "digit-recognizer"
FILES = {
    "train.csv": b"label,pixel0,pixel1\n" + b"7,0,255\n" * 400,
    "test.csv": b"pixel0,pixel1\n" + b"0,128\n" * 300,
    "sample_submission.csv": b"ImageId,Label\n1,0\n2,0\n",
}
SUBMISSION = b"ImageId,Label\n1,7\n2,3\n"
FAILED_UPLOAD = "Could not submit to competition"  # what competition_submit returns instead of raising
STATUS_FAULTS = ["401", "403", "404", "429", "500"]


@pytest.fixture
def server():
    """A stand-in that serves train.csv (the only file over 2 kB) zipped, as Kaggle does for big files."""
    with KaggleStandin(FILES, competition=COMPETITION, zip_single_over=2000) as standin:
        yield standin


@pytest.fixture
def sleeps(monkeypatch):
    """Record instead of sleeping: the client backs off for seconds (up to minutes) between retries."""
    slept = []
    monkeypatch.setattr(time, "sleep", slept.append)
    return slept


@pytest.fixture
def connect(server, monkeypatch, tmp_path):
    """Return connect(**client_env_args) -> an authenticated KaggleApi routed to the stand-in."""
    def connect(auth="key", **credentials):
        for name, value in server.client_env(tmp_path / "home", auth, **credentials).items():
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)
        api = load_kaggle_api()()
        api.authenticate()
        return api
    return connect


@pytest.fixture
def api(connect):
    """A client signed in with the stand-in's username and key via kaggle.json."""
    return connect()


@pytest.fixture
def submission_file(tmp_path):
    """A small submission.csv on disk."""
    path = tmp_path / "submission.csv"
    path.write_bytes(SUBMISSION)
    return path


def api_paths(server):
    """Method names of the API calls the stand-in saw, in order."""
    return [path.rsplit("/", 1)[-1] for _, path in server.requests if path.startswith("/api/")]


def seen(server, on):
    """How many requests the stand-in saw whose fault-matching name contains `on`."""
    return sum(on in request_name(method, path) for method, path in server.requests)


def test_bundle_download_is_a_zip_of_every_file(api, server, tmp_path):
    api.competition_download_files(COMPETITION, path=str(tmp_path / "data"), quiet=True)
    with zipfile.ZipFile(tmp_path / "data" / f"{COMPETITION}.zip") as bundle:
        assert {name: bundle.read(name) for name in bundle.namelist()} == FILES
    assert server.requests == [("POST", "/api/v1/competitions.CompetitionApiService/DownloadDataFiles"),
                               ("GET", f"/blobs/bundle/{COMPETITION}.zip")]


def test_bundle_download_with_unzip_leaves_the_csvs(api, tmp_path):
    api.competition_download_files(COMPETITION, path=str(tmp_path / "data"), quiet=True, unzip=True)
    assert {p.name: p.read_bytes() for p in (tmp_path / "data").iterdir()} == FILES


def test_single_file_download_plain_and_zipped(api, tmp_path):
    out = tmp_path / "one"
    api.competition_download_file(COMPETITION, "sample_submission.csv", path=str(out), quiet=True)
    api.competition_download_file(COMPETITION, "train.csv", path=str(out), quiet=True)
    assert sorted(p.name for p in out.iterdir()) == ["sample_submission.csv", "train.csv.zip"]
    assert (out / "sample_submission.csv").read_bytes() == FILES["sample_submission.csv"]
    assert zipfile.ZipFile(out / "train.csv.zip").read("train.csv") == FILES["train.csv"]
    # unzip=True swaps the wrapper for the file it holds
    api.competition_download_file(COMPETITION, "train.csv", path=str(out), quiet=True, force=True, unzip=True)
    assert (out / "train.csv").read_bytes() == FILES["train.csv"] and not (out / "train.csv.zip").exists()


def test_list_files_names_and_sizes(api):
    listing = api.competition_list_files(COMPETITION)
    assert {f.name: f.total_bytes for f in listing.files} == {n: len(b) for n, b in FILES.items()}


def test_submit_records_bytes_and_message(api, server, submission_file):
    response = api.competition_submit(str(submission_file), "cnn, 12 epochs", COMPETITION, quiet=True)
    assert (response.message, response.ref) == (f"Successfully submitted to {COMPETITION}", 1)
    [recorded] = server.submissions
    assert recorded["bytes"] == SUBMISSION and recorded["description"] == "cnn, 12 epochs"
    assert recorded["sha256"] == hashlib.sha256(SUBMISSION).hexdigest()
    assert recorded["file_name"] == "submission.csv"
    assert [m for m, _ in server.requests] == ["POST", "PUT", "POST"]
    assert api_paths(server) == ["StartSubmissionUpload", "CreateSubmission"]


def test_submissions_pending_until_scored(api, server, submission_file):
    server.score_after_polls, server.public_score = 2, "0.99123"
    api.competition_submit(str(submission_file), "first", COMPETITION, quiet=True)
    polls = [api.competition_submissions(COMPETITION)[0] for _ in range(3)]
    assert [p.status.name for p in polls] == ["PENDING", "PENDING", "COMPLETE"]
    assert [p.public_score for p in polls] == ["", "", "0.99123"]  # unset score reads as ""
    assert (polls[-1].description, polls[-1].ref) == ("first", 1)
    assert server.submissions[0]["status"] == "COMPLETE"


@pytest.mark.parametrize("auth", ["env", "token"])
def test_other_ways_of_signing_in(connect, server, tmp_path, auth):
    api = connect(auth)
    api.competition_download_files(COMPETITION, path=str(tmp_path / "data"), quiet=True)
    # A token is checked by IntrospectToken first; username/key is only checked by the first real call.
    expected = ["IntrospectToken"] if auth == "token" else []
    assert api_paths(server) == expected + ["DownloadDataFiles"]


@pytest.mark.parametrize("credentials", [{"key": "wrong"}, {"username": "someone-else"}])
def test_wrong_key_is_refused_on_the_first_call(connect, tmp_path, credentials):
    api = connect("key", **credentials)  # authenticate() never contacts the server for a key
    with pytest.raises(requests.HTTPError) as caught:
        api.competition_download_files(COMPETITION, path=str(tmp_path / "data"))
    assert caught.value.response.status_code == 401 and str(caught.value) == "Unauthenticated"


@pytest.mark.parametrize("auth, credentials", [("token", {"token": "stale"}), (None, {})])
def test_bad_token_or_no_credentials_exit_in_authenticate(connect, capsys, auth, credentials):
    with pytest.raises(SystemExit) as caught:
        connect(auth, **credentials)
    assert caught.value.code == 1
    assert "Authentication required" in capsys.readouterr().out


def test_unknown_competition_is_404(api, tmp_path, submission_file):
    with pytest.raises(requests.HTTPError) as caught:
        api.competition_download_files("no-such-competition", path=str(tmp_path))
    assert caught.value.response.status_code == 404
    with pytest.raises(requests.HTTPError) as caught:
        api.competition_submit(str(submission_file), "m", "no-such-competition", quiet=True)
    assert caught.value.response.status_code == 404


def test_https_is_never_tunnelled(server, connect):
    connect()
    with pytest.raises(requests.exceptions.ProxyError):
        requests.get("https://api.kaggle.com/v1/ping", timeout=5)
    assert server.requests == [("CONNECT", "api.kaggle.com:443")]


def test_unknown_fault_kind_is_rejected(server):
    with pytest.raises(ValueError, match="unknown fault"):
        server.fail("418")
    assert set(FAULTS) == {*STATUS_FAULTS, "reset", "truncate"}


# ---- faults: what the client surfaces, which the job turns into one-line messages ----

def call(api, op, tmp_path, submission_file):
    """Run one client operation the job uses."""
    if op == "bundle":
        return api.competition_download_files(COMPETITION, path=str(tmp_path / "data"), quiet=True)
    if op == "file":
        return api.competition_download_file(COMPETITION, "test.csv", path=str(tmp_path / "one"), quiet=True)
    if op == "submit":
        return api.competition_submit(str(submission_file), "m", COMPETITION, quiet=True)
    return api.competition_submissions(COMPETITION)


API_CALLS = [("bundle", "DownloadDataFiles"), ("file", "DownloadDataFile"), ("submit", "StartSubmissionUpload"),
             ("submit", "CreateSubmission"), ("list", "ListSubmissions")]


@pytest.mark.parametrize("op, on", API_CALLS)
@pytest.mark.parametrize("kind", STATUS_FAULTS)
def test_api_status_fault_raises_http_error_without_retry(api, server, sleeps, tmp_path, submission_file,
                                                          op, on, kind):
    server.fail(kind, times=2, on=on)  # a retry would hit the second fault and still fail
    with pytest.raises(requests.HTTPError) as caught:
        call(api, op, tmp_path, submission_file)
    # The JSON body's "message" becomes the exception text; the status is on .response.
    assert caught.value.response.status_code == int(kind)
    assert str(caught.value) == MESSAGES[int(kind)]
    assert seen(server, on) == 1 and sleeps == [] and server.submissions == []
    if kind == "429":
        assert caught.value.response.headers["Retry-After"] == server.retry_after


@pytest.mark.parametrize("op", ["bundle", "file"])
@pytest.mark.parametrize("kind", STATUS_FAULTS)
def test_download_transfer_status_fault_raises_http_error_without_retry(api, server, sleeps, tmp_path, op, kind):
    server.fail(kind, times=2, on="blob download")
    with pytest.raises(requests.HTTPError) as caught:
        call(api, op, tmp_path, None)
    assert caught.value.response.status_code == int(kind)
    assert str(caught.value).startswith(f"{kind} ") and "for url: http://localhost/blobs/" in str(caught.value)
    assert seen(server, "blob download") == 1 and sleeps == []


@pytest.mark.parametrize("kind", ["401", "403", "404", "500"])
def test_upload_status_fault_returns_failure_message_instead_of_raising(api, server, sleeps, submission_file,
                                                                        capsys, kind):
    server.fail(kind, times=2, on="blob upload")
    response = call(api, "submit", None, submission_file)
    assert (response.message, response.ref) == (FAILED_UPLOAD, 0)
    # CreateSubmission is never called, so nothing is submitted and nothing explains why.
    assert api_paths(server) == ["StartSubmissionUpload"] and server.submissions == []
    assert seen(server, "blob upload") == 1 and capsys.readouterr().out == ""


def test_upload_429_is_retried_after_retry_after(api, server, sleeps, submission_file):
    server.fail("429", on="blob upload")
    response = call(api, "submit", None, submission_file)
    assert response.ref == 1 and server.submissions[0]["bytes"] == SUBMISSION  # body re-sent intact
    assert sleeps == [1.0]


@pytest.mark.parametrize("kind", ["429", "reset"])
def test_upload_keeps_failing_gives_failure_message_after_eleven_puts(api, server, sleeps, submission_file, kind):
    server.fail(kind, times=99, on="blob upload")
    response = call(api, "submit", None, submission_file)
    assert (response.message, response.ref) == (FAILED_UPLOAD, 0) and server.submissions == []
    assert seen(server, "blob upload") == 11  # urllib3 Retry(total=10)
    # Retry-After (1 s) each time for 429; 0.5 s doubling, capped at 120 s, for resets
    assert sleeps == ([1.0] * 10 if kind == "429" else [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 120.0, 120.0])


def test_upload_reset_once_is_retried(api, server, sleeps, submission_file):
    server.fail("reset", on="blob upload")
    assert call(api, "submit", None, submission_file).ref == 1
    assert seen(server, "blob upload") == 2 and sleeps == []


@pytest.mark.parametrize("op, on", API_CALLS + [("bundle", "blob download"), ("file", "blob download")])
def test_reset_raises_connection_error_without_retry(api, server, sleeps, tmp_path, submission_file, op, on):
    server.fail("reset", times=2, on=on)
    # requests.ConnectionError; through the stand-in's proxy it is the ProxyError subclass.
    with pytest.raises(requests.ConnectionError, match="Connection reset by peer"):
        call(api, op, tmp_path, submission_file)
    assert seen(server, on) == 1
    assert sleeps == [] and server.submissions == []


@pytest.mark.parametrize("op", ["bundle", "file"])
def test_truncated_download_is_resumed_once(api, server, sleeps, tmp_path, op):
    server.fail("truncate", on="blob download")
    call(api, op, tmp_path, None)
    if op == "bundle":
        assert zipfile.ZipFile(tmp_path / "data" / f"{COMPETITION}.zip").read("train.csv") == FILES["train.csv"]
    else:
        assert (tmp_path / "one" / "test.csv").read_bytes() == FILES["test.csv"]
    assert len(sleeps) == 1 and 2 <= sleeps[0] < 3  # 2**1 + random() seconds before the Range request
    assert seen(server, "blob download") == 2


def test_download_keeps_truncating_raises_chunked_encoding_error_and_leaves_partial(api, server, sleeps, tmp_path):
    server.fail("truncate", times=99, on="blob download")
    with pytest.raises(requests.exceptions.ChunkedEncodingError, match="IncompleteRead"):
        call(api, "file", tmp_path, None)
    assert seen(server, "blob download") == 6 and len(sleeps) == 5  # 5 retries, ~62 s of backoff
    # A short file and the resume marker stay behind for the next run to resume from.
    partial = tmp_path / "one" / "test.csv"
    assert partial.stat().st_size < len(FILES["test.csv"])
    assert (tmp_path / "one" / "test.csv.kaggle-partial").exists()


def test_fault_on_restricts_to_matching_calls(api, server, tmp_path, submission_file):
    server.fail("500", on="CreateSubmission")
    call(api, "bundle", tmp_path, None)
    with pytest.raises(requests.HTTPError):
        call(api, "submit", tmp_path, submission_file)
    assert call(api, "submit", tmp_path, submission_file).ref == 1  # times=1: spent


def test_origin_form_requests_work_without_the_proxy(server):
    session = requests.Session()
    session.trust_env = False  # straight to the port, as a non-proxied client would
    url = f"http://127.0.0.1:{server.port}/api/v1/competitions.CompetitionApiService/ListDataFiles"
    reply = session.post(url, json={"competitionName": COMPETITION}, auth=(server.username, server.key))
    assert reply.status_code == 200 and len(reply.json()["files"]) == len(FILES)
    assert session.post(url, json={"competitionName": COMPETITION}).status_code == 401


# ---- datasets, kernels and quota: what a remote training run on Kaggle goes through ----

DATASET = "tester/digits-code"
KERNEL = "tester/digits-train"
CODE = b"\x1f\x8b packed job code"
SCRIPT = "print('training')\n"


@pytest.fixture
def upload_state(monkeypatch, tmp_path):
    """Keep the client's resumable-upload state (else under the system temp dir) in tmp_path."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()


def dataset_folder(tmp_path, ref=DATASET, files=None, name="dataset"):
    """A folder to create or version a dataset from: dataset-metadata.json plus `files`."""
    folder = tmp_path / name
    folder.mkdir(exist_ok=True)
    (folder / "dataset-metadata.json").write_text(json.dumps(
        {"id": ref, "title": "Digits job code", "licenses": [{"name": "CC0-1.0"}]}))
    for file_name, data in (files or {"code.tar.gz": CODE}).items():
        (folder / file_name).write_bytes(data)
    return folder


def kernel_folder(tmp_path, **metadata):
    """A script kernel's folder (GPU, no internet, mounting DATASET and the competition)."""
    folder = tmp_path / "kernel"
    folder.mkdir(exist_ok=True)
    (folder / "train.py").write_text(SCRIPT)
    (folder / "kernel-metadata.json").write_text(json.dumps({
        "id": KERNEL, "title": "digits-train", "code_file": "train.py", "language": "python",
        "kernel_type": "script", "is_private": True, "enable_gpu": True, "enable_internet": False,
        "machine_shape": "NvidiaTeslaT4", "dataset_sources": [DATASET],
        "competition_sources": [COMPETITION], **metadata}))
    return folder


def add_dataset(server, ref=DATASET):
    """Put a ready dataset straight into the stand-in, for kernels that mount it."""
    server.datasets[ref] = {"title": "Digits job code", "license": "CC0-1.0", "private": True,
                            "versions": [{"notes": "", "files": {"code.tar.gz": CODE}}]}


def test_dataset_create_then_version(api, server, tmp_path, upload_state):
    folder = dataset_folder(tmp_path)
    created = api.dataset_create_new(str(folder), public=False, quiet=True, dir_mode="skip")
    assert (created.status, created.ref, created.error) == ("ok", DATASET, "")  # unset reads ""
    assert created.url == f"https://www.kaggle.com/datasets/{DATASET}"
    assert {k: v for k, v in server.datasets[DATASET].items() if k != "versions"} == {
        "title": "Digits job code", "license": "CC0-1.0", "private": True}
    assert server.dataset_files(DATASET) == {"code.tar.gz": CODE}
    statuses = [api.dataset_status(DATASET) for _ in range(3)]
    assert statuses == ["blobs_received", "ready", "ready"]
    # The client asks for the status first: a 404 there is its only check that the slug is free.
    assert api_paths(server)[:3] == ["GetDatasetStatus", "StartBlobUpload", "CreateDataset"]

    (folder / "code.tar.gz").write_bytes(b"newer code")
    version = api.dataset_create_version(str(folder), "notes", quiet=True)
    assert (version.status, version.ref) == ("ok", DATASET)
    assert [v["notes"] for v in server.datasets[DATASET]["versions"]] == ["", "notes"]
    assert server.dataset_files(DATASET) == {"code.tar.gz": b"newer code"}
    assert server.dataset_files(DATASET, 1) == server.dataset_files(DATASET, -2) == {
        "code.tar.gz": CODE}
    # A new version starts processing again.
    assert [api.dataset_status(DATASET) for _ in range(2)] == ["blobs_received", "ready"]


def test_public_dataset_and_delete_old_versions(api, server, tmp_path, upload_state):
    server.dataset_ready_after_polls = 0
    folder = dataset_folder(tmp_path, files={"a.csv": b"1", "b.csv": b"2"})
    api.dataset_create_new(str(folder), public=True, quiet=True)
    assert server.datasets[DATASET]["private"] is False
    assert server.dataset_files(DATASET) == {"a.csv": b"1", "b.csv": b"2"}
    assert api.dataset_status(DATASET) == "ready"
    (folder / "b.csv").unlink()
    api.dataset_create_version(str(folder), "only a", quiet=True, delete_old_versions=True)
    assert [v["notes"] for v in server.datasets[DATASET]["versions"]] == ["only a"]
    assert server.dataset_files(DATASET) == {"a.csv": b"1"}  # a version holds only its uploads


def test_creating_a_taken_slug_is_an_error_status(api, server, tmp_path, upload_state):
    add_dataset(server)
    response = api.dataset_create_new(str(dataset_folder(tmp_path)), quiet=True)
    assert response.status == "error" and "already in use" in response.error
    assert api_paths(server) == ["GetDatasetStatus"]  # decided by the client, uploading nothing
    # The stand-in answers the same when asked directly (a slug taken between check and create).
    session = requests.Session()
    session.trust_env = False
    url = f"http://127.0.0.1:{server.port}/api/v1/datasets.DatasetApiService/CreateDataset"
    reply = session.post(url, json={"ownerSlug": "tester", "slug": "digits-code"},
                         auth=(server.username, server.key))
    assert reply.status_code == 200 and reply.json()["status"] == "error"


def test_dataset_errors_are_http_errors(api, server, tmp_path, upload_state):
    with pytest.raises(requests.HTTPError) as caught:
        api.dataset_status(DATASET)
    assert caught.value.response.status_code == 404
    with pytest.raises(requests.HTTPError) as caught:
        api.dataset_create_version(str(dataset_folder(tmp_path)), "notes", quiet=True)
    assert caught.value.response.status_code == 404
    other = dataset_folder(tmp_path, "someone/digits-code", name="other")
    with pytest.raises(requests.HTTPError) as caught:
        api.dataset_create_new(str(other), quiet=True)
    assert caught.value.response.status_code == 403 and server.datasets == {}


def test_kernel_push_records_the_request_and_answers_the_version(api, server, tmp_path):
    add_dataset(server)
    ran = []
    server.kernel_runner = lambda request: ran.append(request) or KernelResult({})
    first = api.kernels_push(str(kernel_folder(tmp_path)))
    second = api.kernels_push(str(kernel_folder(tmp_path)), timeout="3600")
    assert (first.ref, first.url, first.error) == (
        f"/code/{KERNEL}", f"https://www.kaggle.com/code/{KERNEL}", "")
    assert (first.version_number, second.version_number) == (1, 2)
    assert first.kernel_id == second.kernel_id
    pushed = server.kernel_pushes[0]
    assert (pushed["slug"], pushed["text"], pushed["kernelType"], pushed["language"]) == (
        KERNEL, SCRIPT, "script", "python")
    assert (pushed["machineShape"], pushed["enableGpu"], pushed["enableInternet"]) == (
        "NvidiaTeslaT4", True, False)
    assert pushed["competitionDataSources"] == [COMPETITION]
    assert pushed["datasetDataSources"] == [DATASET]
    assert server.kernel_pushes[1]["sessionTimeoutSeconds"] == 3600
    assert ran == server.kernel_pushes and len(server.kernels[KERNEL]["versions"]) == 2


def test_kernel_status_queued_running_then_final(api, server, tmp_path):
    add_dataset(server)
    api.kernels_push(str(kernel_folder(tmp_path)))
    statuses = [api.kernels_status(KERNEL).status.name for _ in range(4)]
    assert statuses == ["QUEUED", "RUNNING", "COMPLETE", "COMPLETE"]
    assert api.kernels_status(KERNEL).failure_message == ""  # unset reads as ""
    # Each push restarts the sequence; kernel_statuses can skip straight to the end.
    server.kernel_statuses = []
    server.kernel_runner = lambda request: KernelResult({}, final="ERROR",
                                                        failure_message="OOM in fold 2")
    api.kernels_push(str(kernel_folder(tmp_path)))
    status = api.kernels_status(KERNEL)
    assert (status.status.name, status.failure_message) == ("ERROR", "OOM in fold 2")


def test_kernel_status_and_output_of_an_unknown_kernel_are_404(api, tmp_path):
    calls = [lambda: api.kernels_status(KERNEL), lambda: api.kernels_output(KERNEL, str(tmp_path))]
    for call_it in calls:
        with pytest.raises(requests.HTTPError) as caught:
            call_it()
        assert caught.value.response.status_code == 404


def test_kernel_output_pages_through_every_file(api, server, tmp_path):
    add_dataset(server)
    outputs = {f"fold{i % 3}/model {i}.txt": f"weights {i}".encode() for i in range(24)}
    outputs["results.json"] = b'{"accuracy": 0.99}'
    server.kernel_runner = lambda request: KernelResult(outputs, log="epoch 1\nepoch 2\n")
    api.kernels_push(str(kernel_folder(tmp_path)))
    out = tmp_path / "out"
    files, token = api.kernels_output(KERNEL, str(out))
    pulled = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert pulled == {**outputs, "digits-train.log": b"epoch 1\nepoch 2\n"}
    assert len(files) == 26 and not token
    assert api_paths(server).count("ListKernelSessionOutput") == 2  # 20 a page, then 5
    assert seen(server, "blob download") == 25
    name = request_name("GET", "/blobs/kernel-output/tester/digits-train/v1/fold1/model%201.txt")
    assert name == "blob download fold1/model 1.txt"


def test_kernel_output_download_faults_apply(api, server, sleeps, tmp_path):
    add_dataset(server)
    outputs = {"sub/a.bin": b"x" * 1000, "b.bin": b"y" * 10}
    server.kernel_runner = lambda request: KernelResult(outputs)
    api.kernels_push(str(kernel_folder(tmp_path)))
    server.fail("truncate", on="blob download sub/a.bin")
    api.kernels_output(KERNEL, str(tmp_path / "out"))
    assert (tmp_path / "out" / "sub" / "a.bin").read_bytes() == outputs["sub/a.bin"]
    assert len(sleeps) == 1  # one resume
    assert not (tmp_path / "out" / "digits-train.log").exists()  # an empty log writes no file
    server.fail("500", on="blob download b.bin")
    with pytest.raises(requests.HTTPError):
        api.kernels_output(KERNEL, str(tmp_path / "again"))


@pytest.mark.parametrize("metadata, invalid", [
    ({"dataset_sources": ["tester/not-there"]}, {"invalid_dataset_sources": ["tester/not-there"]}),
    ({"competition_sources": ["titanic"]}, {"invalid_competition_sources": ["titanic"]}),
    (None, {"invalid_competition_sources": [COMPETITION]}),  # rules not accepted
])
def test_invalid_sources_are_refused_in_the_body(api, server, tmp_path, metadata, invalid):
    add_dataset(server)
    server.rules_accepted = metadata is not None
    ran = []
    server.kernel_runner = lambda request: ran.append(request) or KernelResult({})
    response = api.kernels_push(str(kernel_folder(tmp_path, **(metadata or {}))))
    for name, value in invalid.items():
        assert getattr(response, name) == value
    # No exception and no error: only the list says so, and there is no version to follow.
    assert (response.error, response.version_number, response.ref) == ("", 0, "")  # unset
    assert len(server.kernel_pushes) == 1 and server.kernels == {} and ran == []


@pytest.mark.parametrize("metadata, refused", [
    ({}, True), ({"enable_internet": True, "enable_gpu": False, "machine_shape": None}, True),
    ({"enable_gpu": False, "machine_shape": None}, False),
])
def test_unverified_phone_refuses_internet_and_accelerators(api, server, tmp_path, metadata,
                                                            refused):
    add_dataset(server)
    server.phone_verified = False
    response = api.kernels_push(str(kernel_folder(tmp_path, **metadata)))
    assert response.error == (PHONE_REQUIRED if refused else "")
    assert (KERNEL in server.kernels) is not refused


def test_push_as_another_user_is_403(api, server, tmp_path):
    with pytest.raises(requests.HTTPError) as caught:
        api.kernels_push(str(kernel_folder(tmp_path, id="someone/digits-train")))
    assert caught.value.response.status_code == 403 and server.kernels == {}


def test_quota_parses_into_durations(api, server):
    server.gpu_quota_used_hours = 12.25
    quota = api.quota_view()
    assert quota.gpu_quota.time_used.total_seconds() / 3600 == 12.25
    assert quota.gpu_quota.total_time_allowed.total_seconds() / 3600 == 30.0
    assert quota.tpu_quota.total_time_allowed.total_seconds() / 3600 == 20.0
    assert quota.quota_refresh_time == datetime(2026, 12, 5)  # naive: the SDK drops the Z


def test_a_version_pinned_status_and_output_answer_for_that_version(api, server, tmp_path):
    """The client writes owner/slug/N as versionLabel "vN": the stand-in answers for version N,
    not the newest, as Kaggle does (kaggle-run follows the version it pushed)."""
    add_dataset(server)
    server.kernel_statuses = []
    results = iter([KernelResult({"one.txt": b"1"}, final="ERROR", failure_message="boom"),
                    KernelResult({"two.txt": b"2"})])
    server.kernel_runner = lambda request: next(results)
    api.kernels_push(str(kernel_folder(tmp_path)))
    api.kernels_push(str(kernel_folder(tmp_path)))
    assert api.kernels_status(KERNEL + "/1").status.name == "ERROR"
    assert api.kernels_status(KERNEL).status.name == "COMPLETE"
    api.kernels_output(KERNEL + "/1", str(tmp_path / "v1"))
    assert (tmp_path / "v1" / "one.txt").read_bytes() == b"1"
    assert not (tmp_path / "v1" / "two.txt").exists()
    with pytest.raises(requests.HTTPError):
        api.kernels_status(KERNEL + "/3")
