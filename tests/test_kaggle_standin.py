"""The stand-in speaks enough of Kaggle's protocol for the real `kaggle` client, faults included.

The client runs in-process against a loopback KaggleStandin; env, HOME and KAGGLE_CONFIG_DIR are the
test's own (monkeypatch), and KaggleApi is re-imported under that env because its class body reads it.
"""

import hashlib
import time
import zipfile

import pytest
import requests

from helpers.kaggle_standin import FAULTS, MESSAGES, KaggleStandin, load_kaggle_api, request_name

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
