"""A Hub-compatible HTTP server for offline tests (stdlib only).

``start_fake_hub()`` starts a ``ThreadingHTTPServer`` on ``127.0.0.1`` (random
port) that stores repositories in a temporary directory and implements the
subset of the Hugging Face Hub API used by ``huggingface_hub`` 2.4 (HfApi,
``hf_hub_download``/``snapshot_download``, ``HfFileSystem``, ModelCard),
``transformers`` 5 (``push_to_hub``/``from_pretrained``), ``datasets`` 5
(``push_to_hub``/``load_dataset``) and ``peft`` (adapter push/pull):

* ``POST /api/repos/create`` (200, or 409 if the repo exists), ``POST /api/repos/delete``;
* ``GET /api/{models|datasets|spaces}/{ns}/{name}[/revision/{rev}]`` (repo info
  with ``sha`` and ``siblings``; 404 + ``X-Error-Code: RepoNotFound`` /
  ``RevisionNotFound``);
* ``GET .../tree/{rev}[/{path}]?recursive=`` (missing path: 404 + ``EntryNotFound``),
  ``POST .../paths-info/{rev}``, ``GET .../refs``, ``GET .../commits/{rev}``,
  ``POST/DELETE .../branch/{name}``, ``POST .../tag/{rev}``, ``DELETE .../tag/{tag}``;
* ``POST .../preupload/{rev}`` (``lfs`` for binary suffixes such as
  .parquet/.safetensors/.bin/.arrow and for files >= ``lfs_threshold`` bytes,
  ``regular`` otherwise; ``oid`` of the current remote file so unchanged files
  are skipped by the client);
* ``POST /{[datasets/]ns/name}.git/info/lfs/objects/batch`` + ``PUT`` of the
  returned ``href`` (the sha256 of the body is checked);
* ``POST .../commit/{rev}`` (NDJSON ``header``/``file``/``lfsFile``/
  ``deletedFile``/``deletedFolder``) -> ``{commitUrl, commitOid}``;
* ``HEAD/GET /{[datasets/]ns}/{name}/resolve/{rev}/{path}`` with ``X-Repo-Commit``,
  ``ETag``, ``Content-Length`` and ``Range`` support (missing: 404 ``EntryNotFound``);
* ``GET /api/whoami-v2``, ``POST /api/validate-yaml``, ``GET /api/agent-harnesses``.

Semantics:

* **Commits are atomic**: a commit is validated completely (every ``lfsFile``
  must reference an uploaded LFS object, every deleted file must exist, the
  optional ``parentCommit`` must be the branch head) before anything changes;
  otherwise the branch is untouched and an HTTP error is returned.
* Creating a repo makes an initial commit with ``.gitattributes`` (as the real
  Hub does), so ``hub.commits(repo_id)`` has length 1 right after ``create_repo``
  and grows by exactly one per successful push.
* Unchanged files are skipped by the client (preupload returns the remote oid),
  so re-pushing identical content makes no commit.
* Failure injection: ``hub.fail_next("PUT", r"/__lfs__/", times=1, status=500)``
  makes the next matching request(s) fail *after* their body has been read and
  before they are handled. ``drop=True`` closes the connection without any
  response instead (the client sees a disconnect); ``after=True`` handles the
  request first (a commit is applied) and only then fails or drops, like a
  connection lost after the server did the work.
* Authentication: by default every request is accepted. With
  ``hub.valid_tokens = {"hf_fake"}`` a write request (POST/PUT/DELETE/PATCH, except
  the pre-signed LFS upload) or ``whoami`` without ``Authorization: Bearer <token>``
  for one of those tokens gets 401, as on the real Hub.
  Note that ``huggingface_hub`` retries 408/429/5xx responses with exponential
  backoff (5 retries, 1+2+4+8+8 s) for preupload, LFS batch/PUT and downloads,
  but not for ``POST .../commit`` (unless ``retry_on_error``).

Using it from pytest
--------------------
``huggingface_hub`` reads ``HF_ENDPOINT`` (and ``HF_HUB_DISABLE_XET``, the cache
paths, ...) **at import time**: ``constants.ENDPOINT``, the URL template of
``hf_hub_url``, the module-level ``HfApi`` behind ``huggingface_hub.upload_file``
etc. and ``transformers.utils.hub``'s cached API all capture it. Monkeypatching
all of them in a process where another test already imported ``transformers`` is
brittle, so the client side of each test runs in a **fresh subprocess** whose
environment points to the fake Hub::

    # tests/conftest.py (suggested)
    import pytest
    from fake_hub import start_fake_hub

    @pytest.fixture(scope="session")
    def fake_hub():
        hub = start_fake_hub()
        yield hub
        hub.stop()

    def test_push(fake_hub, tmp_path):
        out = fake_hub.run_client('''
            from huggingface_hub import HfApi
            api = HfApi()
            api.create_repo("org/x")
            emit(api.list_repo_files("org/x"))
        ''', hf_home=tmp_path / "hf")
        assert out.data == [".gitattributes"]

``hub.client_env(hf_home)`` returns the environment (``HF_ENDPOINT``,
``HF_TOKEN=hf_fake``, ``HF_HUB_DISABLE_XET=1``, ``HF_HOME``,
``HF_HUB_DISABLE_TELEMETRY=1``, ...) if you prefer to spawn processes yourself.
In the client code, ``emit(obj)`` prints ``obj`` as JSON so that
``run_client(...).data`` returns it (last emitted value).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = ["FakeHub", "ClientResult", "start_fake_hub", "DEFAULT_LFS_SUFFIXES"]

DEFAULT_LFS_SUFFIXES = (
    ".parquet", ".safetensors", ".bin", ".arrow", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".onnx",
    ".npy", ".npz", ".gguf", ".pkl", ".pickle", ".joblib", ".zip", ".gz", ".tar", ".zst", ".nc", ".zarr",
)
GITATTRIBUTES = (
    "*.bin filter=lfs diff=lfs merge=lfs -text\n"
    "*.safetensors filter=lfs diff=lfs merge=lfs -text\n"
    "*.parquet filter=lfs diff=lfs merge=lfs -text\n"
    "*.arrow filter=lfs diff=lfs merge=lfs -text\n"
).encode()
REPO_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
_EMIT_MARKER = "@@FAKE_HUB_EMIT@@"


def _git_oid(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def _lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


@dataclass(frozen=True)
class _File:
    sha256: str
    size: int
    lfs: bool

    @property
    def git_oid(self) -> str:
        # for LFS files git stores the pointer file
        return _git_oid(_lfs_pointer(self.sha256, self.size)) if self.lfs else self._regular_oid

    # filled by the store for regular files (git oid of the content)
    _regular_oid: str = ""

    @property
    def remote_oid(self) -> str:
        """The oid the client compares with (``CommitOperationAdd._local_oid``)."""
        return self.sha256 if self.lfs else self._regular_oid


@dataclass
class _Commit:
    id: str
    parent: str | None
    title: str
    message: str
    date: str
    files: dict[str, _File]


@dataclass
class _Repo:
    repo_id: str
    repo_type: str
    private: bool = False
    commits: dict[str, _Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    created_at: str = field(default_factory=_now)


class _HTTPError(Exception):
    def __init__(self, status: int, message: str, error_code: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_code = error_code


@dataclass
class ClientResult:
    """Result of :meth:`FakeHub.run_client`."""

    returncode: int
    stdout: str
    stderr: str
    data: Any = None


@dataclass
class _FailRule:
    method: str
    pattern: re.Pattern
    times: int
    status: int
    drop: bool = False
    after: bool = False


class FakeHub:
    """State + HTTP server of the fake Hub. Use :func:`start_fake_hub` to create one."""

    def __init__(self, root: str | os.PathLike | None = None, *, lfs_threshold: int = 10 * 1024 * 1024,
                 lfs_suffixes: tuple[str, ...] = DEFAULT_LFS_SUFFIXES, user: str = "fake-user"):
        self._own_root = root is None
        self.root = Path(tempfile.mkdtemp(prefix="fake_hub_")) if root is None else Path(root)
        self.blob_dir = self.root / "blobs"
        self.blob_dir.mkdir(parents=True, exist_ok=True)
        self.lfs_threshold = lfs_threshold
        self.lfs_suffixes = tuple(s.lower() for s in lfs_suffixes)
        self.user = user
        self.repos: dict[tuple[str, str], _Repo] = {}
        self.lfs_objects: set[str] = set()
        self.requests: list[tuple[str, str, int]] = []  # (method, path, status); status 0 = dropped, no response
        self.valid_tokens: set[str] | None = None  # None: no authentication (see the module docstring)
        self.unhandled: list[tuple[str, str]] = []
        self._rules: list[_FailRule] = []
        self._lock = threading.RLock()
        self._counter = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "FakeHub":
        hub = self

        class Handler(_Handler):
            fake_hub = hub

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-hub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "FakeHub":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ test helpers
    def fail_next(self, method: str, path_regex: str, times: int = 1, status: int = 500, *,
                  drop: bool = False, after: bool = False) -> None:
        """Fail the next ``times`` requests whose method is ``method`` (``"*"`` = any)
        and whose path (without query) matches ``re.search(path_regex)`` with ``status``.

        ``drop``: close the connection without a response instead. ``after``: handle the
        request normally first (e.g. apply the commit), then fail or drop its response.
        """
        with self._lock:
            self._rules.append(_FailRule(method.upper(), re.compile(path_regex), times, status, drop, after))

    def clear_failures(self) -> None:
        with self._lock:
            self._rules.clear()

    def commits(self, repo_id: str, repo_type: str = "model", revision: str = "main") -> list[str]:
        """Commit ids of ``revision``'s history, oldest first ([] if the repo does not exist)."""
        with self._lock:
            repo = self.repos.get((repo_type, repo_id))
            if repo is None:
                return []
            cid = self._resolve(repo, revision).id
            out = []
            while cid is not None:
                out.append(cid)
                cid = repo.commits[cid].parent
            return out[::-1]

    def commit_messages(self, repo_id: str, repo_type: str = "model", revision: str = "main") -> list[str]:
        with self._lock:
            repo = self.repos[(repo_type, repo_id)]
            return [repo.commits[c].title for c in self.commits(repo_id, repo_type, revision)]

    def repo_exists(self, repo_id: str, repo_type: str = "model") -> bool:
        return (repo_type, repo_id) in self.repos

    def list_files(self, repo_id: str, repo_type: str = "model", revision: str = "main") -> list[str]:
        with self._lock:
            return sorted(self._resolve(self.repos[(repo_type, repo_id)], revision).files)

    def read_file(self, repo_id: str, path: str, repo_type: str = "model", revision: str = "main") -> bytes:
        with self._lock:
            f = self._resolve(self.repos[(repo_type, repo_id)], revision).files[path]
        return (self.blob_dir / f.sha256).read_bytes()

    def is_lfs(self, repo_id: str, path: str, repo_type: str = "model", revision: str = "main") -> bool:
        with self._lock:
            return self._resolve(self.repos[(repo_type, repo_id)], revision).files[path].lfs

    def client_env(self, hf_home: str | os.PathLike, **extra: str) -> dict[str, str]:
        """Environment for a client process talking to this fake Hub."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_"))}
        hf_home = str(hf_home)
        env.update(
            HF_ENDPOINT=self.url,
            HF_TOKEN="hf_fake",
            HF_HUB_DISABLE_XET="1",
            HF_HOME=hf_home,
            HF_HUB_DISABLE_TELEMETRY="1",
            HF_HUB_DISABLE_PROGRESS_BARS="1",
            HF_HUB_DISABLE_IMPLICIT_TOKEN="0",
            HF_DATASETS_DISABLE_PROGRESS_BARS="1",
            HF_HUB_ETAG_TIMEOUT="30",
            HF_HUB_DOWNLOAD_TIMEOUT="60",
            TRANSFORMERS_VERBOSITY="error",
            TOKENIZERS_PARALLELISM="false",
            NO_PROXY="127.0.0.1,localhost",
            no_proxy="127.0.0.1,localhost",
        )
        env.update({k: str(v) for k, v in extra.items()})
        return env

    def run_client(self, code: str, *, hf_home: str | os.PathLike, timeout: float = 300, check: bool = True,
                   env: dict[str, str] | None = None, cwd: str | os.PathLike | None = None) -> ClientResult:
        """Run ``code`` (dedented) in a fresh Python process pointed at this Hub.

        ``emit(obj)`` is predefined in the client and makes ``obj`` (JSON) the
        result's ``data``. With ``check=True`` a non-zero exit raises
        ``AssertionError`` carrying the client's stderr.
        """
        prelude = (
            "import json as _fh_json, sys as _fh_sys\n"
            "def emit(obj):\n"
            f"    print({_EMIT_MARKER!r} + _fh_json.dumps(obj, default=str), flush=True)\n"
        )
        full = prelude + textwrap.dedent(code)
        proc = subprocess.run(
            [sys.executable, "-c", full],
            env={**self.client_env(hf_home), **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=cwd,
        )
        data = None
        for line in proc.stdout.splitlines():
            if line.startswith(_EMIT_MARKER):
                data = json.loads(line[len(_EMIT_MARKER):])
        if check and proc.returncode != 0:
            raise AssertionError(
                f"client failed (rc={proc.returncode})\n--- stdout ---\n{proc.stdout[-4000:]}\n"
                f"--- stderr ---\n{proc.stderr[-8000:]}\n--- unhandled routes ---\n{self.unhandled}"
            )
        return ClientResult(proc.returncode, proc.stdout, proc.stderr, data)

    # ------------------------------------------------------------------ internals
    def _take_failure(self, method: str, path: str) -> _FailRule | None:
        with self._lock:
            for rule in self._rules:
                if rule.times > 0 and rule.method in ("*", method) and rule.pattern.search(path):
                    rule.times -= 1
                    return rule
        return None

    def _authorized(self, method: str, path: str, authorization: str | None) -> bool:
        if self.valid_tokens is None:
            return True
        needs_token = (method in ("POST", "PUT", "DELETE", "PATCH") and not path.startswith("/__lfs__/")) \
            or path == "/api/whoami-v2"
        if not needs_token:
            return True
        scheme, _, token = (authorization or "").partition(" ")
        return scheme.lower() == "bearer" and token in self.valid_tokens

    def _new_commit_id(self, *parts: str) -> str:
        with self._lock:
            self._counter += 1
            seed = "\0".join([*parts, str(self._counter), repr(time.time())])
        return hashlib.sha1(seed.encode()).hexdigest()

    def _store_blob(self, content: bytes) -> str:
        sha = hashlib.sha256(content).hexdigest()
        target = self.blob_dir / sha
        if not target.exists():
            tmp = self.blob_dir / f".{sha}.{threading.get_ident()}.tmp"
            tmp.write_bytes(content)
            os.replace(tmp, target)
        return sha

    def _regular_file(self, content: bytes) -> _File:
        return _File(sha256=self._store_blob(content), size=len(content), lfs=False, _regular_oid=_git_oid(content))

    def _get_repo(self, repo_type: str, repo_id: str) -> _Repo:
        repo = self.repos.get((repo_type, repo_id))
        if repo is None:
            raise _HTTPError(404, f"Repository Not Found for url: {repo_type}s/{repo_id}", "RepoNotFound")
        return repo

    def _resolve(self, repo: _Repo, revision: str | None) -> _Commit:
        rev = revision or "main"
        for prefix in ("refs/heads/", "refs/tags/"):
            if rev.startswith(prefix):
                rev = rev[len(prefix):]
        if rev in repo.branches:
            return repo.commits[repo.branches[rev]]
        if rev in repo.tags:
            return repo.commits[repo.tags[rev]]
        if rev in repo.commits:
            return repo.commits[rev]
        if re.fullmatch(r"[0-9a-f]{7,39}", rev):
            matches = [c for c in repo.commits if c.startswith(rev)]
            if len(matches) == 1:
                return repo.commits[matches[0]]
        raise _HTTPError(404, f"Invalid rev id: {revision}", "RevisionNotFound")

    def create_repo(self, repo_id: str, repo_type: str = "model", private: bool = False) -> _Repo:
        with self._lock:
            if (repo_type, repo_id) in self.repos:
                raise _HTTPError(409, "You already created this repo")
            repo = _Repo(repo_id=repo_id, repo_type=repo_type, private=private)
            files = {".gitattributes": self._regular_file(GITATTRIBUTES)}
            cid = self._new_commit_id(repo_type, repo_id, "initial commit")
            repo.commits[cid] = _Commit(cid, None, "initial commit", "", _now(), files)
            repo.branches["main"] = cid
            self.repos[(repo_type, repo_id)] = repo
            return repo

    def _is_lfs_path(self, path: str, size: int) -> bool:
        return path.lower().endswith(self.lfs_suffixes) or size >= self.lfs_threshold

    def _apply_commit(self, repo: _Repo, revision: str, lines: list[dict]) -> _Commit:
        """Validate the whole NDJSON payload, then apply it atomically."""
        header: dict = {}
        ops: list[tuple[str, dict]] = []
        for item in lines:
            key, value = item.get("key"), item.get("value") or {}
            if key == "header":
                header = value
            elif key in ("file", "lfsFile", "deletedFile", "deletedFolder"):
                if not isinstance(value.get("path"), str) or not value["path"]:
                    raise _HTTPError(400, f"Invalid {key} operation: missing path")
                ops.append((key, value))
            else:
                raise _HTTPError(400, f"Unknown commit operation {key!r}")
        branch = revision[len("refs/heads/"):] if revision.startswith("refs/heads/") else revision
        with self._lock:
            if branch not in repo.branches:
                raise _HTTPError(404, f"Invalid rev id: {revision} (commits must target a branch)", "RevisionNotFound")
            head = repo.commits[repo.branches[branch]]
            parent = header.get("parentCommit")
            if parent and parent != head.id:
                raise _HTTPError(412, "A commit has happened since the parent commit. Please retry.")
            files = dict(head.files)
            for key, value in ops:
                path = value["path"].lstrip("/")
                if key == "file":
                    if value.get("encoding", "base64") != "base64":
                        raise _HTTPError(400, f"Unsupported encoding {value.get('encoding')!r}")
                    files[path] = self._regular_file(base64.b64decode(value.get("content", "")))
                elif key == "lfsFile":
                    oid = value.get("oid", "")
                    if value.get("algo", "sha256") != "sha256" or oid not in self.lfs_objects:
                        raise _HTTPError(422, f"LFS object {oid} for {path!r} has not been uploaded")
                    size = (self.blob_dir / oid).stat().st_size
                    if value.get("size") is not None and int(value["size"]) != size:
                        raise _HTTPError(422, f"LFS object {oid}: size mismatch")
                    files[path] = _File(sha256=oid, size=size, lfs=True)
                elif key == "deletedFile":
                    if path not in files:
                        raise _HTTPError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
                    del files[path]
                else:  # deletedFolder
                    prefix = path.rstrip("/") + "/"
                    gone = [p for p in files if p.startswith(prefix)]
                    if not gone:
                        raise _HTTPError(404, f"A folder with this name doesn't exist: {path}", "EntryNotFound")
                    for p in gone:
                        del files[p]
            title = header.get("summary") or "Upload files"
            cid = self._new_commit_id(repo.repo_type, repo.repo_id, head.id, title)
            commit = _Commit(cid, head.id, title, header.get("description") or "", _now(), files)
            repo.commits[cid] = commit
            repo.branches[branch] = cid
            return commit

    # ------------------------------------------------------------------ JSON shapes
    def _entry(self, path: str, f: _File, commit: _Commit | None = None) -> dict:
        entry: dict[str, Any] = {"type": "file", "oid": f.git_oid, "size": f.size, "path": path}
        if f.lfs:
            entry["lfs"] = {"oid": f.sha256, "size": f.size, "pointerSize": len(_lfs_pointer(f.sha256, f.size))}
        if commit is not None:
            entry["lastCommit"] = {"id": commit.id, "title": commit.title, "date": commit.date}
        return entry

    def _dir_entry(self, path: str, commit: _Commit, expand: bool) -> dict:
        oid = hashlib.sha1(f"tree\0{commit.id}\0{path}".encode()).hexdigest()
        entry: dict[str, Any] = {"type": "directory", "oid": oid, "size": 0, "path": path}
        if expand:
            entry["lastCommit"] = {"id": commit.id, "title": commit.title, "date": commit.date}
        return entry

    def _dirs(self, commit: _Commit) -> set[str]:
        dirs = set()
        for p in commit.files:
            parts = p.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                dirs.add("/".join(parts[:i]))
        return dirs

    def _repo_info(self, repo: _Repo, commit: _Commit) -> dict:
        siblings = []
        for p, f in sorted(commit.files.items()):
            s: dict[str, Any] = {"rfilename": p, "size": f.size, "blobId": f.git_oid}
            if f.lfs:
                s["lfs"] = {"sha256": f.sha256, "size": f.size, "pointerSize": len(_lfs_pointer(f.sha256, f.size))}
            siblings.append(s)
        author = repo.repo_id.split("/")[0]
        info: dict[str, Any] = {
            "_id": hashlib.md5(f"{repo.repo_type}/{repo.repo_id}".encode()).hexdigest()[:24],
            "id": repo.repo_id,
            "author": author,
            "sha": commit.id,
            "lastModified": commit.date,
            "createdAt": repo.created_at,
            "private": repo.private,
            "gated": False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "siblings": siblings,
            "usedStorage": sum(f.size for f in commit.files.values()),
        }
        if repo.repo_type == "model":
            info["modelId"] = repo.repo_id
        return info


class _Handler(BaseHTTPRequestHandler):
    fake_hub: FakeHub
    _after_rule: _FailRule | None = None
    protocol_version = "HTTP/1.1"
    server_version = "FakeHub/1.0"

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - silence default stderr logging
        pass

    # -------------------------------------------------------------- plumbing
    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size_line = self.rfile.readline().strip()
                size = int(size_line.split(b";")[0] or b"0", 16)
                if size == 0:
                    while self.rfile.readline().strip():  # trailers
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()  # CRLF
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None,
              content_type: str = "application/json") -> None:
        rule, self._after_rule = self._after_rule, None
        if rule is not None:  # the request was handled; its response is replaced by the injected failure
            if rule.drop:
                self._drop()
            else:
                self._error(rule.status, "Injected failure after handling the request (fake hub)")
            return
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)
        self.fake_hub.requests.append((self.command, self.path, status))

    def _json(self, obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(obj).encode(), headers)

    def _error(self, status: int, message: str, error_code: str | None = None) -> None:
        headers = {"X-Error-Message": message.replace("\n", " ")[:500]}
        if error_code:
            headers["X-Error-Code"] = error_code
        self._json({"error": message}, status, headers)

    def _drop(self) -> None:
        """Close the connection without a response (the client sees a disconnect)."""
        self.close_connection = True
        self.fake_hub.requests.append((self.command, self.path, 0))

    def _handle(self) -> None:
        hub = self.fake_hub
        self._after_rule = None
        body = self._read_body() if self.command in ("POST", "PUT", "PATCH", "DELETE") else b""
        split = urlsplit(self.path)
        rule = hub._take_failure(self.command, split.path)
        if rule is not None and not rule.after:
            if rule.drop:
                self._drop()
            else:
                self._error(rule.status, "Injected failure (fake hub)")
            return
        self._after_rule = rule
        if not hub._authorized(self.command, split.path, self.headers.get("Authorization")):
            self._error(401, "Invalid credentials in Authorization header")
            return
        segs = [unquote(s) for s in split.path.split("/")[1:]]
        query = parse_qs(split.query)
        try:
            if not self._route(segs, query, body):
                hub.unhandled.append((self.command, self.path))
                self._error(404, f"Fake hub: no route for {self.command} {split.path}")
        except _HTTPError as e:
            self._error(e.status, e.message, e.error_code)
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception as e:  # pragma: no cover - surfaced to the client as a 500
            self._error(500, f"Fake hub internal error: {type(e).__name__}: {e}")

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

    # -------------------------------------------------------------- routing
    def _route(self, segs: list[str], query: dict, body: bytes) -> bool:
        hub, m = self.fake_hub, self.command
        if not segs:
            return False
        if segs[0] == "api":
            return self._route_api(segs[1:], query, body)
        if m == "PUT" and segs[0] == "__lfs__" and len(segs) == 2:
            return self._lfs_put(segs[1], body)
        # /{[datasets/|spaces/]ns/name}.git/info/lfs/objects/batch
        if m == "POST" and segs[-4:] == ["info", "lfs", "objects", "batch"]:
            head = segs[:-4]
            repo_type = "model"
            if head and head[0] in ("datasets", "spaces"):
                repo_type, head = REPO_TYPES[head[0]], head[1:]
            repo_id = "/".join(head)
            if not repo_id.endswith(".git"):
                return False
            return self._lfs_batch(repo_type, repo_id[: -len(".git")], body)
        # /{[datasets/]ns}/{name}/resolve/{rev}/{path}
        repo_type, rest = "model", segs
        if rest[0] in ("datasets", "spaces"):
            repo_type, rest = REPO_TYPES[rest[0]], rest[1:]
        if m in ("GET", "HEAD") and len(rest) >= 5 and rest[2] == "resolve":
            repo = hub._get_repo(repo_type, f"{rest[0]}/{rest[1]}")
            return self._resolve_file(repo, rest[3], "/".join(rest[4:]))
        return False

    def _route_api(self, segs: list[str], query: dict, body: bytes) -> bool:
        hub, m = self.fake_hub, self.command
        if segs == ["whoami-v2"] and m == "GET":
            self._json({
                "type": "user", "id": "0" * 24, "name": hub.user, "fullname": "Fake User",
                "email": f"{hub.user}@example.com", "emailVerified": True, "isPro": False, "orgs": [],
                "auth": {"type": "access_token", "accessToken": {"displayName": "fake", "role": "write"}},
            })
            return True
        if segs == ["validate-yaml"] and m == "POST":
            self._json({"errors": [], "warnings": []})
            return True
        if segs == ["agent-harnesses"] and m == "GET":
            self._json({"standardEnvVars": [], "harnesses": {}})
            return True
        if segs[:1] == ["repos"] and m == "POST" and len(segs) == 2 and segs[1] in ("create", "delete"):
            payload = json.loads(body or b"{}")
            name = payload.get("name", "")
            ns = payload.get("organization") or hub.user
            repo_id = name if "/" in name else f"{ns}/{name}"
            repo_type = payload.get("type") or "model"
            if segs[1] == "create":
                url = f"{hub.url}/{URL_PREFIX[repo_type]}{repo_id}"
                try:
                    hub.create_repo(repo_id, repo_type, bool(payload.get("private")))
                except _HTTPError as e:  # 409: the real Hub also returns the url
                    self._json({"error": e.message, "url": url}, e.status, {"X-Error-Message": e.message})
                    return True
                self._json({"url": url, "name": repo_id, "id": repo_id})
            else:
                with hub._lock:
                    hub._get_repo(repo_type, repo_id)
                    del hub.repos[(repo_type, repo_id)]
                self._json({})
            return True
        if len(segs) >= 3 and segs[0] in REPO_TYPES:
            repo_type = REPO_TYPES[segs[0]]
            repo = hub._get_repo(repo_type, f"{segs[1]}/{segs[2]}")
            return self._route_repo(repo, segs[3:], query, body)
        return False

    def _route_repo(self, repo: _Repo, rest: list[str], query: dict, body: bytes) -> bool:
        hub, m = self.fake_hub, self.command
        with hub._lock:
            if m == "GET" and (not rest or (len(rest) == 2 and rest[0] == "revision")):
                commit = hub._resolve(repo, rest[1] if rest else "main")
                self._json(hub._repo_info(repo, commit))
                return True
            if m == "GET" and len(rest) >= 2 and rest[0] == "tree":
                commit = hub._resolve(repo, rest[1])
                self._tree(commit, "/".join(rest[2:]).strip("/"), query)
                return True
            if m == "POST" and len(rest) == 2 and rest[0] == "paths-info":
                commit = hub._resolve(repo, rest[1])
                self._paths_info(commit, body)
                return True
            if m == "POST" and len(rest) == 2 and rest[0] == "preupload":
                commit = hub._resolve(repo, rest[1])
                payload = json.loads(body or b"{}")
                files = []
                for f in payload.get("files", []):
                    path = f["path"]
                    existing = commit.files.get(path)
                    files.append({
                        "path": path,
                        "uploadMode": "lfs" if hub._is_lfs_path(path, int(f.get("size") or 0)) else "regular",
                        "shouldIgnore": False,
                        "oid": existing.remote_oid if existing is not None else None,
                    })
                self._json({"files": files, "commitOid": commit.id})
                return True
            if m == "GET" and rest == ["refs"]:
                branches = [{"name": b, "ref": f"refs/heads/{b}", "targetCommit": c} for b, c in repo.branches.items()]
                tags = [{"name": t, "ref": f"refs/tags/{t}", "targetCommit": c} for t, c in repo.tags.items()]
                self._json({"branches": branches, "tags": tags, "converts": []})
                return True
            if m == "GET" and len(rest) == 2 and rest[0] == "commits":
                out = []
                cid: str | None = hub._resolve(repo, rest[1]).id
                while cid is not None:
                    c = repo.commits[cid]
                    out.append({"id": c.id, "title": c.title, "message": c.message, "date": c.date,
                                "authors": [{"user": hub.user}]})
                    cid = c.parent
                self._json(out)
                return True
            if len(rest) == 2 and rest[0] == "branch" and m in ("POST", "DELETE"):
                if m == "POST":
                    if rest[1] in repo.branches:
                        raise _HTTPError(409, f"Branch {rest[1]} already exists")
                    start = (json.loads(body or b"{}") or {}).get("startingPoint") or "main"
                    repo.branches[rest[1]] = hub._resolve(repo, start).id
                else:
                    if rest[1] not in repo.branches or rest[1] == "main":
                        raise _HTTPError(404, f"Branch {rest[1]} not found", "RevisionNotFound")
                    del repo.branches[rest[1]]
                self._json({})
                return True
            if len(rest) == 2 and rest[0] == "tag" and m in ("POST", "DELETE"):
                if m == "POST":
                    payload = json.loads(body or b"{}")
                    tag = payload.get("tag")
                    if not tag:
                        raise _HTTPError(400, "missing tag")
                    if tag in repo.tags:
                        raise _HTTPError(409, f"Tag {tag} already exists")
                    repo.tags[tag] = hub._resolve(repo, rest[1]).id
                else:
                    if rest[1] not in repo.tags:
                        raise _HTTPError(404, f"Tag {rest[1]} not found", "RevisionNotFound")
                    del repo.tags[rest[1]]
                self._json({})
                return True
            if m == "PUT" and rest == ["settings"]:
                payload = json.loads(body or b"{}")
                if "private" in payload:
                    repo.private = bool(payload["private"])
                self._json({})
                return True
        if m == "POST" and len(rest) == 2 and rest[0] == "commit":
            if query.get("create_pr"):
                raise _HTTPError(400, "Fake hub does not support pull requests (create_pr)")
            lines = [json.loads(line) for line in body.splitlines() if line.strip()]
            commit = hub._apply_commit(repo, rest[1], lines)
            self._json({
                "success": True,
                "commitOid": commit.id,
                "commitUrl": f"{hub.url}/{URL_PREFIX[repo.repo_type]}{repo.repo_id}/commit/{commit.id}",
                "commitMessage": commit.title,
            })
            return True
        return False

    # -------------------------------------------------------------- endpoints
    def _tree(self, commit: _Commit, path: str, query: dict) -> None:
        hub = self.fake_hub
        recursive = query.get("recursive", ["false"])[0].lower() in ("1", "true")
        expand = query.get("expand", ["false"])[0].lower() in ("1", "true")
        dirs = hub._dirs(commit)
        if path and path not in dirs:
            if path in commit.files:
                self._json([hub._entry(path, commit.files[path], commit if expand else None)])
                return
            raise _HTTPError(404, f"Entry not found: {path}", "EntryNotFound")
        prefix = f"{path}/" if path else ""
        out = []
        for d in sorted(dirs):
            if d.startswith(prefix) and (recursive or "/" not in d[len(prefix):]):
                out.append(hub._dir_entry(d, commit, expand))
        for p, f in sorted(commit.files.items()):
            if p.startswith(prefix) and (recursive or "/" not in p[len(prefix):]):
                out.append(hub._entry(p, f, commit if expand else None))
        self._json(out)

    def _paths_info(self, commit: _Commit, body: bytes) -> None:
        hub = self.fake_hub
        ctype = self.headers.get("Content-Type", "")
        if "json" in ctype:
            payload = json.loads(body or b"{}")
            paths, expand = payload.get("paths", []), bool(payload.get("expand"))
        else:
            form = parse_qs(body.decode(), keep_blank_values=True)
            paths = form.get("paths", [])
            expand = form.get("expand", ["false"])[0].lower() in ("1", "true")
        if isinstance(paths, str):
            paths = [paths]
        dirs = hub._dirs(commit)
        out = []
        for p in paths:
            p = p.strip("/")
            if p in commit.files:
                out.append(hub._entry(p, commit.files[p], commit if expand else None))
            elif p in dirs or p == "":
                out.append(hub._dir_entry(p, commit, expand))
        self._json(out)

    def _lfs_batch(self, repo_type: str, repo_id: str, body: bytes) -> bool:
        hub = self.fake_hub
        hub._get_repo(repo_type, repo_id)
        payload = json.loads(body or b"{}")
        if payload.get("operation") not in (None, "upload", "download"):
            raise _HTTPError(400, "unsupported LFS operation")
        objects = []
        for obj in payload.get("objects", []):
            oid, size = obj["oid"], int(obj["size"])
            entry: dict[str, Any] = {"oid": oid, "size": size, "authenticated": True}
            if oid not in hub.lfs_objects:
                entry["actions"] = {"upload": {"href": f"{hub.url}/__lfs__/{oid}", "expires_in": 3600}}
            objects.append(entry)
        self._send(200, json.dumps({"transfer": "basic", "objects": objects, "hash_algo": "sha256"}).encode(),
                   content_type="application/vnd.git-lfs+json")
        return True

    def _lfs_put(self, oid: str, body: bytes) -> bool:
        hub = self.fake_hub
        if hashlib.sha256(body).hexdigest() != oid:
            raise _HTTPError(400, f"LFS upload for {oid}: sha256 mismatch ({len(body)} bytes received)")
        hub._store_blob(body)
        with hub._lock:
            hub.lfs_objects.add(oid)
        self._send(200, b"", content_type="text/plain")
        return True

    def _resolve_file(self, repo: _Repo, revision: str, path: str) -> bool:
        hub = self.fake_hub
        with hub._lock:
            commit = hub._resolve(repo, revision)
            f = commit.files.get(path)
        if f is None:
            raise _HTTPError(404, f"Entry not found: {path}", "EntryNotFound")
        data = (hub.blob_dir / f.sha256).read_bytes()
        etag = f.sha256 if f.lfs else f.git_oid
        headers = {"X-Repo-Commit": commit.id, "ETag": f'"{etag}"', "Accept-Ranges": "bytes"}
        status = 200
        rng = self.headers.get("Range")
        if rng:
            mm = re.fullmatch(r"bytes=(\d*)-(\d*)", rng.strip())
            if not mm or (mm.group(1) == "" and mm.group(2) == ""):
                raise _HTTPError(416, f"Invalid range {rng!r}")
            n = len(data)
            if mm.group(1) == "":
                start, end = max(0, n - int(mm.group(2))), n - 1
            else:
                start = int(mm.group(1))
                end = min(int(mm.group(2)), n - 1) if mm.group(2) else n - 1
            if start >= n and n > 0:
                headers["Content-Range"] = f"bytes */{n}"
                self._send(416, b"", headers, "application/octet-stream")
                return True
            headers["Content-Range"] = f"bytes {start}-{end}/{n}"
            data = data[start:end + 1]
            status = 206
        self._send(status, data, headers, "application/octet-stream")
        return True


def start_fake_hub(root: str | os.PathLike | None = None, **kwargs) -> FakeHub:
    """Start a fake Hub on ``127.0.0.1:<random port>`` and return it (call ``.stop()`` when done)."""
    return FakeHub(root, **kwargs).start()

