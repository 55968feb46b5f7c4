"""A loopback stand-in for the Kaggle API that the real `kaggle` client talks to through a proxy.

With KAGGLE_API_ENVIRONMENT=LOCALHOST the client POSTs JSON to http://localhost/api/v1/<service>/<method>;
HTTP(S)_PROXY pointed here makes every such request (and every file transfer) land on this server.
Besides the competition (files, submissions) it keeps private datasets, script kernels whose
runs a test scripts through `kernel_runner`, and the accelerator quota.
"""

import base64
import email.utils
import hashlib
import importlib
import io
import json
import mimetypes
import os
import socket
import struct
import sys
import threading
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

API = "/api/v1/"
BLOBS = "/blobs/"
BUNDLES = BLOBS + "bundle/"
FILES = BLOBS + "files/"
KERNEL_OUTPUT = BLOBS + "kernel-output/"
UPLOADS = "/uploads/"
FAULTS = ("401", "403", "404", "429", "500", "reset", "truncate")
MESSAGES = {400: "Bad request", 401: "Unauthenticated", 403: "Permission denied: accept the rules first",
            404: "Not found", 429: "Too many requests", 500: "Internal error", 501: "Not implemented"}
COMPETITION_RPCS = {"ListDataFiles", "DownloadDataFiles", "DownloadDataFile", "StartSubmissionUpload",
                    "CreateSubmission", "ListSubmissions"}
PHONE_REQUIRED = ("Phone verification required: verify your phone number at "
                  "https://www.kaggle.com/settings to use internet and accelerators")


@dataclass
class Reply:
    """One HTTP answer; `fault` asks the handler to reset the connection or truncate the body."""
    status: int
    body: bytes = b""
    headers: dict = field(default_factory=dict)
    fault: str | None = None


@dataclass
class KernelResult:
    """What one kernel run leaves: output files by relative path, its log, its final status."""
    files: dict[str, bytes]
    log: str = ""
    final: str = "COMPLETE"         # COMPLETE, ERROR, CANCEL_ACKNOWLEDGED...
    failure_message: str = ""       # sent as failureMessage once `final` is reached, when non-empty


def json_reply(status: int, payload: dict, **headers) -> Reply:
    """A JSON answer, the shape every API method (and every API error) has."""
    return Reply(status, json.dumps(payload).encode(), {"Content-Type": "application/json", **headers})


def build_zip(files: dict[str, bytes]) -> bytes:
    """Zip `files` in memory with a fixed timestamp so the bundle's bytes never change between calls."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=(2012, 7, 25, 0, 0, 0)), data)
    return buffer.getvalue()


def load_kaggle_api():
    """Return KaggleApi imported under the current env: its class body freezes config_dir and --local at import."""
    name = "kaggle.api.kaggle_api_extended"
    module = importlib.reload(sys.modules[name]) if name in sys.modules else importlib.import_module(name)
    return module.KaggleApi


class KaggleStandin:
    """Competition files, submissions and switchable faults behind the client's JSON-over-HTTP protocol."""

    def __init__(self, files: dict[str, bytes], competition: str = "digit-recognizer", username: str = "tester",
                 key: str = "secret", token: str = "standin-token", zip_single_over: int | None = None):
        self.files, self.competition = dict(files), competition
        self.username, self.key, self.token = username, key, token
        self.requests: list[tuple[str, str]] = []
        self.submissions: list[dict] = []
        self.score_after_polls = 1          # polls that still see PENDING before the score appears
        self.public_score = "0.98765"
        self.retry_after = "1"              # seconds; the upload session's urllib3 Retry honours it
        self._faults: list[list] = []       # [kind, times left, on]
        self._uploads: dict[str, dict] = {}
        # "owner/slug" -> {"title", "license", "private", "versions": [{"notes", "files"}]}
        self.datasets: dict[str, dict] = {}
        self.dataset_ready_after_polls = 1  # polls that see BLOBS_RECEIVED after each version
        # Polls since the newest version, kept apart so `datasets` holds only what was uploaded.
        self._dataset_polls: dict[str, int] = {}
        self.gpu_quota_used_hours, self.gpu_quota_total_hours = 2.5, 30.0
        self.quota_refresh = "2026-12-05T00:00:00.000Z"
        # Kaggle refuses a push in a 200 body, not with an HTTP error; these switch refusals on.
        self.rules_accepted = True   # False: the competition comes back as an invalid source
        self.phone_verified = True   # False: internet or an accelerator comes back as "error"
        self.kernel_pushes: list[dict] = []  # every SaveKernel body, refused or not
        self.kernel_runner: Callable[[dict], KernelResult] | None = None  # None: no output
        self.kernel_statuses = ["QUEUED", "RUNNING"]  # what polls see before the final status
        # "owner/slug" -> {"versions": [{"request", "result", "polls"}]}
        self.kernels: dict[str, dict] = {}
        self._lock = threading.Lock()
        # Fixed validators let the client's Range resume (If-Range) match across requests.
        self._modified = email.utils.formatdate(usegmt=True)
        self._blobs = {f"{BUNDLES}{competition}.zip": build_zip(self.files)}
        for name, data in self.files.items():
            # Kaggle wraps large single files as <name>.zip; zip_single_over mimics that.
            zipped = zip_single_over is not None and len(data) > zip_single_over
            self._blobs[FILES + quote(name) + (".zip" if zipped else "")] = build_zip({name: data}) if zipped else data
        self._httpd = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self) -> None:
        """Serve on an ephemeral loopback port from a daemon thread."""
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.standin = self
        # A short poll interval keeps shutdown (and so each test's teardown) quick.
        threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        """Stop serving and release the port."""
        self._httpd.shutdown()
        self._httpd.server_close()

    @property
    def port(self) -> int:
        """The loopback port the server listens on."""
        return self._httpd.server_address[1]

    def env(self) -> dict[str, str]:
        """Env vars that send the real client (API calls and file transfers) here and nowhere else."""
        proxy = f"http://127.0.0.1:{self.port}"
        # Empty no_proxy: requests (via urllib) would otherwise skip the proxy for hosts listed there.
        return {"KAGGLE_API_ENVIRONMENT": "LOCALHOST", "HTTP_PROXY": proxy, "HTTPS_PROXY": proxy,
                "http_proxy": proxy, "https_proxy": proxy, "NO_PROXY": "", "no_proxy": ""}

    def client_env(self, home: Path, auth: str = "key", username: str | None = None, key: str | None = None,
                   token: str | None = None) -> dict[str, str | None]:
        """Env isolating a client in `home`, signed in via auth "key"/"env"/"token"/None; None values mean unset."""
        env: dict[str, str | None] = {name: None for name in os.environ if name.startswith("KAGGLE_")}
        # REQUEST_METHOD makes urllib drop HTTP_PROXY (CGI safety); XDG would move the config dir.
        env.update({"REQUEST_METHOD": None, "XDG_CONFIG_HOME": None, "HOME": str(home), **self.env()})
        # kaggle.json (auth="key"), KAGGLE_USERNAME/KAGGLE_KEY ("env") or KAGGLE_API_TOKEN ("token").
        config_dir = Path(home) / ".kaggle"
        config_dir.mkdir(parents=True, exist_ok=True)
        env["KAGGLE_CONFIG_DIR"] = str(config_dir)
        if auth == "key":
            (config_dir / "kaggle.json").write_text(json.dumps(
                {"username": username or self.username, "key": key or self.key}))
            (config_dir / "kaggle.json").chmod(0o600)
        elif auth == "env":
            env.update(KAGGLE_USERNAME=username or self.username, KAGGLE_KEY=key or self.key)
        elif auth == "token":
            env["KAGGLE_API_TOKEN"] = token or self.token
        return env

    def dataset_files(self, ref: str, version: int = -1) -> dict[str, bytes]:
        """Files of dataset `ref` at `version`: its number (1 = first), or if negative counted
        back from the newest (-1)."""
        if version == 0:
            raise ValueError("dataset versions are numbered from 1; use -1 for the newest")
        index = version - 1 if version > 0 else version
        return dict(self.datasets[ref]["versions"][index]["files"])

    def fail(self, kind: str, times: int = 1, on: str | None = None) -> None:
        """Make the next `times` requests whose name contains `on` fail as `kind` (see FAULTS)."""
        if kind not in FAULTS:
            raise ValueError(f"unknown fault {kind!r}; expected one of {', '.join(FAULTS)}")
        with self._lock:
            self._faults.append([kind, times, on])

    def respond(self, method: str, path: str, headers, body: bytes) -> Reply:
        """Answer one request: record it, fire a matching fault, else route it."""
        with self._lock:
            self.requests.append((method, path))
        if method == "CONNECT":  # an https URL: refuse rather than tunnel anywhere real
            return Reply(403, b"the stand-in does not tunnel", {"Content-Type": "text/plain"})
        name = request_name(method, path)
        kind = self._take_fault(name, is_download=method == "GET" and path.startswith(BLOBS))
        if kind == "reset":
            return Reply(0, fault="reset")
        if kind not in (None, "truncate"):
            return self._error(int(kind), path)
        reply = self._route(method, path, headers, body)
        reply.fault = kind
        return reply

    def _take_fault(self, name: str, is_download: bool) -> str | None:
        """Consume and return the first armed fault that applies to this request."""
        with self._lock:
            for fault in self._faults:
                kind, _, on = fault
                # truncate needs a body to cut, so it waits for the next matching file download.
                if (on is not None and on not in name) or (kind == "truncate" and not is_download):
                    continue
                fault[1] -= 1
                if fault[1] <= 0:
                    self._faults.remove(fault)
                return kind
        return None

    def _error(self, status: int, path: str, message: str | None = None) -> Reply:
        """An error the way the API sends it (JSON with code) or, for file transfers, as plain text."""
        extra = {"Retry-After": self.retry_after} if status == 429 else {}
        text = message or MESSAGES[status]
        if path.startswith(API):
            return json_reply(status, {"code": status, "message": text}, **extra)
        return Reply(status, text.encode(), {"Content-Type": "text/plain", **extra})

    def _route(self, method: str, path: str, headers, body: bytes) -> Reply:
        """Dispatch by path: API call, file download, upload."""
        if method == "POST" and path.startswith(API):
            return self._call(path[len(API):].rsplit("/", 1)[-1], path, headers, body)
        if method == "GET" and path in self._blobs:
            return self._download(self._blobs[path], path, headers)
        if method == "GET" and path.startswith(KERNEL_OUTPUT):
            return self._kernel_output(path, headers)
        if method == "PUT" and path.startswith(UPLOADS):
            return self._upload(path[len(UPLOADS):], body)
        return self._error(404, path)

    def _call(self, rpc: str, path: str, headers, body: bytes) -> Reply:
        """Check credentials and competition, then run one API method."""
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            return self._error(400, path, "Request body is not JSON")
        if rpc == "IntrospectToken":  # token in the body; unknown ones are inactive, as in OAuth introspection
            active = request.get("token") == self.token
            return json_reply(200, {"active": active, "username": self.username if active else ""})
        if not self._authorized(headers.get("Authorization", "")):
            return self._error(401, path)
        if rpc in COMPETITION_RPCS and request.get("competitionName") != self.competition:
            return self._error(404, path, f"Competition '{request.get('competitionName')}' not found")
        method = getattr(self, "_rpc_" + rpc, None)
        return method(request, path) if method else self._error(501, path, f"stand-in lacks {rpc}")

    def _authorized(self, header: str) -> bool:
        """Accept Basic username:key (kaggle.json, KAGGLE_KEY) or Bearer token (KAGGLE_API_TOKEN)."""
        scheme, _, value = header.partition(" ")
        if scheme == "Bearer":
            return value == self.token
        if scheme == "Basic":
            return base64.b64decode(value).decode(errors="replace") == f"{self.username}:{self.key}"
        return False

    def _rpc_ListDataFiles(self, request: dict, path: str) -> Reply:
        """All competition files in one page."""
        files = [{"ref": name, "name": name, "totalBytes": len(data), "creationDate": "2012-07-25T00:00:00.000Z"}
                 for name, data in self.files.items()]
        return json_reply(200, {"files": files})

    def _rpc_DownloadDataFiles(self, request: dict, path: str) -> Reply:
        """Redirect to the bundle zip; the client names its file after the URL's extension."""
        return Reply(302, headers={"Location": f"http://localhost{BUNDLES}{self.competition}.zip"})

    def _rpc_DownloadDataFile(self, request: dict, path: str) -> Reply:
        """Redirect to one file (or its .zip wrapper when large)."""
        plain = FILES + quote(request.get("fileName", ""))
        location = next((p for p in (plain, plain + ".zip") if p in self._blobs), None)
        if location is None:
            return self._error(404, path, f"File '{request.get('fileName')}' not found")
        return Reply(302, headers={"Location": f"http://localhost{location}"})

    def _rpc_StartSubmissionUpload(self, request: dict, path: str) -> Reply:
        """Hand out an upload token and the URL the client PUTs the bytes to."""
        return self._new_upload(request.get("fileName", ""))

    def _rpc_StartBlobUpload(self, request: dict, path: str) -> Reply:
        """The same for a dataset file; the dataset keeps it under `name`, the file's basename."""
        return self._new_upload(request.get("name", ""))

    def _new_upload(self, file_name: str) -> Reply:
        """Reserve an upload token for `file_name`; the bytes arrive later by PUT to createUrl."""
        with self._lock:
            token = f"upload-{len(self._uploads) + 1}"
            self._uploads[token] = {"file_name": file_name, "bytes": None}
        return json_reply(200, {"token": token, "createUrl": f"http://localhost{UPLOADS}{token}"})

    def _rpc_CreateSubmission(self, request: dict, path: str) -> Reply:
        """Turn an uploaded blob into a pending submission."""
        upload = self._uploads.get(request.get("blobFileTokens", ""))
        if upload is None or upload["bytes"] is None:
            return self._error(400, path, "No uploaded file for this token")
        with self._lock:
            ref = len(self.submissions) + 1
            self.submissions.append({
                "ref": ref, "file_name": upload["file_name"], "bytes": upload["bytes"],
                "sha256": hashlib.sha256(upload["bytes"]).hexdigest(),
                "description": request.get("submissionDescription", ""), "date": datetime.now(timezone.utc),
                "status": "PENDING", "public_score": None, "polls": 0})
        return json_reply(200, {"message": f"Successfully submitted to {self.competition}", "ref": ref})

    def _rpc_ListSubmissions(self, request: dict, path: str) -> Reply:
        """Newest first; each listing counts as one poll of every submission."""
        return json_reply(200, {"submissions": [self._poll(s) for s in reversed(self.submissions)]})

    def _rpc_GetSubmission(self, request: dict, path: str) -> Reply:
        """One submission by ref; counts as a poll."""
        found = [s for s in self.submissions if s["ref"] == request.get("ref")]
        return json_reply(200, self._poll(found[0])) if found else self._error(404, path)

    def _poll(self, submission: dict) -> dict:
        """Advance scoring by one poll and return the submission as the API serialises it."""
        with self._lock:
            if submission["polls"] >= self.score_after_polls:
                submission.update(status="COMPLETE", public_score=self.public_score)
            submission["polls"] += 1
        payload = {"ref": submission["ref"], "totalBytes": len(submission["bytes"]),
                   "date": submission["date"].strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
                   "description": submission["description"], "fileName": submission["file_name"],
                   "status": submission["status"], "submittedBy": self.username, "teamName": self.username}
        if submission["public_score"] is not None:
            payload["publicScore"] = submission["public_score"]
        return payload

    # ---- datasets ----

    def _rpc_CreateDataset(self, request: dict, path: str) -> Reply:
        """A dataset from uploaded files; a taken slug is refused in the body, as Kaggle does."""
        owner, slug = request.get("ownerSlug", ""), request.get("slug", "")
        if owner != self.username:
            return self._error(403, path, f"'{self.username}' cannot create datasets of '{owner}'")
        files = self._uploaded(request.get("files", []))
        if files is None:
            return self._error(400, path, "No uploaded file for a token")
        ref = f"{owner}/{slug}"
        with self._lock:
            if ref in self.datasets:
                taken = f'The requested slug "{slug}" is already in use by a dataset.'
                return json_reply(200, {"status": "error", "error": taken})
            # The client leaves isPrivate out when false (its default): absent means public.
            self.datasets[ref] = {"title": request.get("title", ""),
                                  "license": request.get("licenseName", ""),
                                  "private": bool(request.get("isPrivate", False)),
                                  "versions": [{"notes": "", "files": files}]}
            self._dataset_polls[ref] = 0
        return json_reply(200, self._dataset_created(ref))

    def _rpc_CreateDatasetVersion(self, request: dict, path: str) -> Reply:
        """A version holding exactly the uploaded files (the client re-uploads the whole folder)."""
        ref = f"{request.get('ownerSlug', '')}/{request.get('datasetSlug', '')}"
        if ref not in self.datasets:
            return self._error(404, path, f"Dataset '{ref}' not found")
        if request.get("ownerSlug") != self.username:
            return self._error(403, path, f"'{self.username}' cannot version '{ref}'")
        body = request.get("body") or {}
        files = self._uploaded(body.get("files", []))
        if files is None:
            return self._error(400, path, "No uploaded file for a token")
        with self._lock:
            versions = self.datasets[ref]["versions"]
            version = {"notes": body.get("versionNotes", ""), "files": files}
            # deleteOldVersions, like isPrivate, is only sent when true.
            self.datasets[ref]["versions"] = (
                [version] if body.get("deleteOldVersions") else [*versions, version])
            self._dataset_polls[ref] = 0
        return json_reply(200, self._dataset_created(ref))

    def _rpc_GetDatasetStatus(self, request: dict, path: str) -> Reply:
        """BLOBS_RECEIVED for the first polls after a version, then READY; for an unknown dataset
        404, which dataset_create_new takes to mean the slug is free."""
        ref = f"{request.get('ownerSlug', '')}/{request.get('datasetSlug', '')}"
        if ref not in self.datasets:
            return self._error(404, path, f"Dataset '{ref}' not found")
        with self._lock:
            polls = self._dataset_polls.get(ref, 0)
            self._dataset_polls[ref] = polls + 1
        ready = polls >= self.dataset_ready_after_polls
        return json_reply(200, {"status": "READY" if ready else "BLOBS_RECEIVED"})

    def _uploaded(self, files: list[dict]) -> dict[str, bytes] | None:
        """{name: bytes} for the upload tokens in `files`; None if a token is unknown or unsent."""
        uploads = [self._uploads.get(entry.get("token", "")) for entry in files]
        if any(upload is None or upload["bytes"] is None for upload in uploads):
            return None
        return {upload["file_name"]: upload["bytes"] for upload in uploads}

    def _dataset_created(self, ref: str) -> dict:
        """The ApiCreateDatasetResponse for a dataset (or version) Kaggle accepted."""
        return {"ref": ref, "url": f"https://www.kaggle.com/datasets/{ref}", "status": "ok"}

    # ---- kernels ----

    def _rpc_SaveKernel(self, request: dict, path: str) -> Reply:
        """Record the push; refuse it in a 200 body as Kaggle does, else run it and answer the
        new version."""
        with self._lock:
            self.kernel_pushes.append(request)
        ref = request.get("slug") or ""
        owner, _, slug = ref.partition("/")
        if not slug:
            return self._error(400, path, "The stand-in needs slug as owner/kernel-slug")
        if owner != self.username:
            return self._error(403, path, f"'{self.username}' cannot push kernels of '{owner}'")
        refusal = {}
        missing = [source for source in request.get("datasetDataSources", [])
                   if source not in self.datasets]
        if missing:
            refusal["invalidDatasetSources"] = missing
        # Unaccepted rules look like an unknown competition: a source the kernel cannot have.
        refused = [source for source in request.get("competitionDataSources", [])
                   if source != self.competition or not self.rules_accepted]
        if refused:
            refusal["invalidCompetitionSources"] = refused
        wants_phone = any(request.get(name) for name in
                          ("enableInternet", "enableGpu", "enableTpu", "machineShape"))
        if wants_phone and not self.phone_verified:
            refusal["error"] = PHONE_REQUIRED
        if refusal:
            return json_reply(200, refusal)
        try:
            result = self.kernel_runner(request) if self.kernel_runner else KernelResult({})
        except Exception as error:  # a test's bug: show it rather than drop the connection
            return self._error(500, path, f"kernel_runner raised {error!r}")
        with self._lock:
            kernel = self.kernels.setdefault(ref, {"versions": []})
            number = len(kernel["versions"]) + 1
            kernel["versions"].append({"request": request, "result": result, "polls": 0,
                                       "number": number})
            number, kernel_id = len(kernel["versions"]), list(self.kernels).index(ref) + 1
        return json_reply(200, {"ref": f"/code/{ref}", "url": f"https://www.kaggle.com/code/{ref}",
                                "versionNumber": number, "kernelId": kernel_id})

    def _rpc_GetKernelSessionStatus(self, request: dict, path: str) -> Reply:
        """The version's (versionLabel "v<N>", else the newest's) next status from
        kernel_statuses, then its final one for good."""
        version = self._kernel_version(request)
        if version is None:
            return self._unknown_kernel(request, path)
        with self._lock:
            polls = version["polls"]
            version["polls"] += 1
        if polls < len(self.kernel_statuses):
            return json_reply(200, {"status": self.kernel_statuses[polls]})
        result = version["result"]
        payload = {"status": result.final}
        if result.failure_message:
            payload["failureMessage"] = result.failure_message
        return json_reply(200, payload)

    def _rpc_ListKernelSessionOutput(self, request: dict, path: str) -> Reply:
        """The version's (versionLabel "v<N>", else the newest's) output files by name, pageSize
        at a time; the token is an offset."""
        version = self._kernel_version(request)
        if version is None:
            return self._unknown_kernel(request, path)
        result, size = version["result"], request.get("pageSize") or 20
        token = request.get("pageToken") or "0"
        if not token.isdigit():
            return self._error(400, path, f"Bad page token {token!r}")
        names, start = sorted(result.files), int(token)
        owner, slug = request.get("userName"), request.get("kernelSlug")
        base = f"http://localhost{KERNEL_OUTPUT}{owner}/{slug}/v{version['number']}/"
        page = names[start:start + size]
        files = [{"url": base + quote(name), "fileName": name} for name in page]
        # The client writes <slug>.log from the first page's log only: repeating it is harmless.
        payload = {"files": files, "log": result.log}
        if start + size < len(names):
            payload["nextPageToken"] = str(start + size)
        return json_reply(200, payload)

    def _kernel_version(self, request: dict) -> dict | None:
        """The version a status/output request names (versionLabel "v<N>", as the client
        writes a pinned one), else the kernel's newest; None if there is no such version."""
        kernel = self.kernels.get(f"{request.get('userName', '')}/{request.get('kernelSlug', '')}")
        versions = kernel["versions"] if kernel else []
        label = str(request.get("versionLabel") or "")
        if not label:
            return versions[-1] if versions else None
        number = int(label[1:]) if label[:1] == "v" and label[1:].isdigit() else 0
        return versions[number - 1] if 0 < number <= len(versions) else None

    def _unknown_kernel(self, request: dict, path: str) -> Reply:
        """The 404 for a status/output request naming no pushed kernel."""
        ref = f"{request.get('userName')}/{request.get('kernelSlug')}"
        return self._error(404, path, f"Kernel '{ref}' not found")

    def _kernel_output(self, path: str, headers) -> Reply:
        """One output file of a kernel's newest version, resumable like every other download."""
        owner, slug, label, name = (path[len(KERNEL_OUTPUT):].split("/", 3) + ["", "", ""])[:4]
        version = self._kernel_version({"userName": owner, "kernelSlug": slug,
                                        "versionLabel": label})
        files, name = (version["result"].files if version else {}), unquote(name)
        if name not in files:
            return self._error(404, path)
        return self._download(files[name], path, headers)

    def _rpc_GetAcceleratorQuotaStatistics(self, request: dict, path: str) -> Reply:
        """This week's GPU hours as durations ("<seconds>s"); the TPU's 20 h untouched."""
        def duration(hours: float) -> str:
            return f"{round(hours * 3600)}s"
        gpu = {"timeUsed": duration(self.gpu_quota_used_hours),
               "totalTimeAllowed": duration(self.gpu_quota_total_hours)}
        return json_reply(200, {"quotaRefreshTime": self.quota_refresh, "gpuQuota": gpu,
                                "tpuQuota": {"timeUsed": "0s", "totalTimeAllowed": "72000s"}})

    def _download(self, data: bytes, path: str, headers) -> Reply:
        """Serve file bytes with the headers the client's resumable download relies on."""
        etag, total, start = '"' + hashlib.md5(data).hexdigest() + '"', len(data), 0
        meta = {"Content-Type": mimetypes.guess_type(path)[0] or "application/octet-stream",
                "Accept-Ranges": "bytes", "ETag": etag, "Last-Modified": self._modified}
        wanted = headers.get("Range", "")
        if wanted.startswith("bytes=") and headers.get("If-Range", etag) in (etag, self._modified):
            start = int(wanted[6:].split("-")[0] or 0)
            if start >= total:
                return Reply(416, headers={"Content-Range": f"bytes */{total}"})
            return Reply(206, data[start:], {**meta, "Content-Range": f"bytes {start}-{total - 1}/{total}"})
        return Reply(200, data, meta)

    def _upload(self, token: str, body: bytes) -> Reply:
        """Store the PUT bytes against the upload token."""
        with self._lock:
            if token not in self._uploads:
                return self._error(404, UPLOADS)
            self._uploads[token]["bytes"] = body
        return Reply(200, b"{}", {"Content-Type": "application/json"})


def request_name(method: str, path: str) -> str:
    """What `fail(on=...)` matches: "<service>/<Method>", "blob download <file>" or "blob upload <token>".

    A kernel output file's <file> is its whole relative path ("fold1/model.keras"), as the
    listing's fileName has it, so same-named files in two folders can fail apart.
    """
    if path.startswith(API):
        return path[len(API):]
    if path.startswith(KERNEL_OUTPUT):
        # <owner>/<slug>/v<N>/<file>
        return "blob download " + unquote((path[len(KERNEL_OUTPUT):].split("/", 3) + [""] * 3)[3])
    if path.startswith(BLOBS):
        return "blob download " + unquote(path.rsplit("/", 1)[-1])
    if path.startswith(UPLOADS):
        return "blob upload " + path[len(UPLOADS):]
    return f"{method} {path}"


class _Server(ThreadingHTTPServer):
    """Threaded server whose close never waits on a client's idle keep-alive connection."""
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request, client_address) -> None:
        """Ignore clients that hang up (retries, resets); report anything else."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    """Speaks HTTP/1.1 for the stand-in; accepts absolute-form (proxy) and origin-form targets."""
    protocol_version = "HTTP/1.1"
    timeout = 10  # idle keep-alive connections end on their own

    def do_any(self) -> None:
        """Read the request, ask the stand-in, write the reply (or misbehave as told)."""
        # A proxy client sends "POST http://localhost/api/v1/..."; a direct one sends "POST /api/v1/...".
        path = self.path if self.command == "CONNECT" else urlsplit(self.path).path
        reply = self.server.standin.respond(self.command, path, self.headers, self._read_body())
        if reply.fault == "reset":
            # SO_LINGER 0 turns close() into a TCP RST: the client sees "connection reset by peer".
            # Close here: socketserver's own close would send FIN (SHUT_WR) first and blur the reset.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return
        self.send_response(reply.status)
        for name, value in {**reply.headers, "Content-Length": str(len(reply.body))}.items():
            self.send_header(name, value)
        self.end_headers()
        if reply.fault == "truncate":  # full Content-Length announced, half delivered, then FIN
            self.wfile.write(reply.body[: len(reply.body) // 2])
            self.close_connection = True
        else:
            self.wfile.write(reply.body)

    do_GET = do_POST = do_PUT = do_CONNECT = do_any

    def _read_body(self) -> bytes:
        """The request body, whether sized by Content-Length or sent chunked."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0], 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def log_message(self, format, *args) -> None:
        """Stay quiet; `requests` on the stand-in is the log tests look at."""
