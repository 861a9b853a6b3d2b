"""Tests for kit.kaggle.client: credentials, redaction and the client, against a local fake of the API.

The real `kaggle` package is never imported here (it authenticates, maybe online, at import):
`FakeKaggleApi` answers with the Kaggle SDK's own response types, and its method names and
keywords are checked against the real `KaggleApi` source, read with `ast`.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import sys
import zipfile
from pathlib import Path

import pytest
from kagglesdk.competitions.types.competition_api_service import (
    ApiCreateSubmissionResponse,
    ApiSubmission,
)
from kagglesdk.competitions.types.submission_status import SubmissionStatus
from kagglesdk.kernels.types.kernels_api_service import ApiSaveKernelResponse

from kit.kaggle import client as kaggle
from kit.kaggle.client import (
    Credentials,
    KaggleClient,
    KaggleError,
    connect,
    find_credentials,
    find_submission,
    permission_warning,
    redact,
    submission_message,
)

SECRET = "0123456789abcdef0123456789abcdef"
TOKEN = "KGAT_5ecret5ecret5ecret"


class FakeKaggleApi:
    """Answers the `KaggleApi` calls kit makes, locally; records them in `calls`."""

    def __init__(self, *, members: dict[str, bytes] | None = None,
                 scores: list[tuple[str | None, str | None]] | None = None,
                 fail: Exception | None = None, kernel_error: str = "") -> None:
        self.calls: list[tuple] = []
        self.members = members or {"sample_submission.csv": b"id,label\n1,0.5\n"}
        self.scores = list(scores or [("0.91234", "1.05")])
        self.fail = fail
        self.kernel_error = kernel_error
        self.submitted: list[ApiSubmission] = []

    def _maybe_fail(self) -> None:
        if self.fail is not None:
            raise self.fail

    def competition_download_files(self, competition, path=None, force=False, quiet=True):
        self.calls.append(("competition_download_files", competition, path, force, quiet))
        self._maybe_fail()
        with zipfile.ZipFile(Path(path) / f"{competition}.zip", "w") as archive:
            for name, data in self.members.items():
                archive.writestr(name, data)

    def competition_submit(self, file_name, message, competition, quiet=False, sandbox=False):
        self.calls.append(("competition_submit", file_name, message, competition, quiet))
        self._maybe_fail()
        submission = ApiSubmission()
        submission.ref = 1000 + len(self.submitted)
        submission.description = message
        submission.file_name = Path(file_name).name
        submission.status = SubmissionStatus.PENDING
        self.submitted.insert(0, submission)  # Kaggle lists the newest first
        response = ApiCreateSubmissionResponse()
        response.message = "Successfully submitted"
        response.ref = submission.ref
        return response

    def competition_submissions(self, competition, group=None, sort=None, page_number=-1,
                                page_token="", page_size=20):
        self.calls.append(("competition_submissions", competition))
        self._maybe_fail()
        for submission in self.submitted:  # each look scores one more pending submission
            if submission.status == SubmissionStatus.PENDING and self.scores:
                public, private = self.scores.pop(0)
                if public == "error":
                    submission.status = SubmissionStatus.ERROR
                    submission.error_description = "wrong number of rows"
                elif public is not None:
                    submission.status = SubmissionStatus.COMPLETE
                    submission.public_score = public
                    submission.private_score = private or ""
                break
        return list(self.submitted)

    def kernels_push(self, folder, timeout=None, acc=None):
        self.calls.append(("kernels_push", folder))
        self._maybe_fail()
        meta = json.loads((Path(folder) / "kernel-metadata.json").read_text())
        response = ApiSaveKernelResponse()
        response.ref = f"/code/{meta['id']}"
        response.url = f"https://www.kaggle.com/code/{meta['id']}"
        response.version_number = 1
        if self.kernel_error:
            response.error = self.kernel_error
        return response


# ---------------------------------------------------------------- the fake matches the real API


def _real_methods() -> dict[str, list[str]]:
    spec = importlib.util.find_spec("kaggle")  # finds the package without importing it
    assert spec is not None and spec.submodule_search_locations
    source = Path(list(spec.submodule_search_locations)[0]) / "api" / "kaggle_api_extended.py"
    tree = ast.parse(source.read_text())
    api = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "KaggleApi")
    return {f.name: [a.arg for a in f.args.args] for f in api.body
            if isinstance(f, ast.FunctionDef)}


def test_the_fake_has_the_real_clients_methods_and_keywords() -> None:
    real = _real_methods()
    assert real["authenticate"] == ["self"]
    assert real["competition_download_files"][:5] == ["self", "competition", "path", "force",
                                                      "quiet"]
    assert real["competition_submit"][:5] == ["self", "file_name", "message", "competition",
                                              "quiet"]
    assert real["competition_submissions"][:2] == ["self", "competition"]
    assert real["kernels_push"][:2] == ["self", "folder"]


# ---------------------------------------------------------------- credentials


def _private(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o600)
    return path


def test_no_credentials_names_every_place(tmp_path: Path) -> None:
    assert find_credentials(env={}, home=tmp_path) is None
    with pytest.raises(KaggleError) as caught:
        connect(env={}, home=tmp_path)
    message = str(caught.value)
    for place in ("kaggle.json", "KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN",
                  "access_token", "--archive FILE"):
        assert place in message


def test_kaggle_json_in_the_config_dir(tmp_path: Path) -> None:
    _private(tmp_path / ".kaggle" / "kaggle.json", json.dumps({"username": "ann", "key": SECRET}))
    found = find_credentials(env={}, home=tmp_path)
    assert found is not None
    assert (found.kind, found.username, found.warnings) == ("api_key", "ann", ())
    assert found.source == str(tmp_path / ".kaggle" / "kaggle.json")
    custom = _private(tmp_path / "conf" / "kaggle.json",
                      json.dumps({"username": "bob", "key": SECRET}))
    found = find_credentials(env={"KAGGLE_CONFIG_DIR": str(custom.parent)}, home=tmp_path)
    assert found is not None and found.username == "bob"


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    _private(tmp_path / ".kaggle" / "kaggle.json", json.dumps({"username": "ann", "key": "x" * 8}))
    found = find_credentials(env={"KAGGLE_USERNAME": "env-user", "KAGGLE_KEY": SECRET},
                             home=tmp_path)
    assert found is not None
    assert (found.username, found.source, found.secrets) == ("env-user",
                                                             "KAGGLE_USERNAME/KAGGLE_KEY",
                                                             (SECRET,))


def test_access_tokens_come_first(tmp_path: Path) -> None:
    _private(tmp_path / ".kaggle" / "kaggle.json", json.dumps({"username": "ann", "key": SECRET}))
    found = find_credentials(env={"KAGGLE_API_TOKEN": TOKEN}, home=tmp_path)
    assert found is not None and (found.kind, found.source) == ("access_token", "KAGGLE_API_TOKEN")
    token_file = _private(tmp_path / "token.txt", TOKEN + "\n")
    found = find_credentials(env={"KAGGLE_API_TOKEN": str(token_file)}, home=tmp_path)
    assert found is not None and found.secrets == (TOKEN,) and found.source == str(token_file)
    _private(tmp_path / ".kaggle" / "access_token", TOKEN)
    found = find_credentials(env={}, home=tmp_path)
    assert found is not None and found.kind == "access_token"


def test_oauth_credentials_file(tmp_path: Path) -> None:
    _private(tmp_path / ".kaggle" / "credentials.json",
             json.dumps({"username": "ann", "refresh_token": TOKEN}))
    found = find_credentials(env={}, home=tmp_path)
    assert found is not None and (found.kind, found.username) == ("oauth", "ann")
    assert TOKEN in found.secrets


@pytest.mark.skipif(os.name == "nt", reason="POSIX permissions")
def test_a_credentials_file_readable_by_others_warns(tmp_path: Path) -> None:
    path = _private(tmp_path / ".kaggle" / "kaggle.json",
                    json.dumps({"username": "ann", "key": SECRET}))
    assert permission_warning(path) is None
    path.chmod(0o644)
    expected = (f"warning: the Kaggle credentials file {path} is readable by other users "
                f"(mode 0644); run `chmod 600 {path}`")
    assert permission_warning(path) == expected
    found = find_credentials(env={}, home=tmp_path)
    assert found is not None and found.warnings == (expected,)
    warnings: list[str] = []
    connect(env={}, home=tmp_path, warn=warnings.append)
    assert warnings == [expected] and SECRET not in expected


# ---------------------------------------------------------------- redaction


def test_secrets_never_show_in_reprs() -> None:
    credentials = Credentials(kind="api_key", source="kaggle.json", username="ann",
                              secrets=(SECRET,))
    for text in (repr(credentials), str(credentials), repr(KaggleClient(credentials=credentials)),
                 f"{credentials}"):
        assert SECRET not in text and "***" in text


def test_redact_known_secrets_and_key_like_fields() -> None:
    text = (f'401 for https://x/api?token={TOKEN} body {{"username": "ann", "key": "{SECRET}"}} '
            f"Authorization: Bearer {TOKEN}")
    clean = redact(text, [SECRET])
    assert SECRET not in clean and TOKEN not in clean and "ann" in clean
    assert redact("nothing secret here", [SECRET]) == "nothing secret here"


def test_api_errors_are_redacted(tmp_path: Path) -> None:
    credentials = Credentials(kind="api_key", source="kaggle.json", username="ann",
                              secrets=(SECRET,))
    failing = FakeKaggleApi(fail=RuntimeError(f"HTTP 403 for user ann with key {SECRET}"))
    client = KaggleClient(failing, credentials=credentials)
    with pytest.raises(KaggleError) as caught:
        client.download("dogs-vs-cats-redux-kernels-edition", tmp_path)
    message = str(caught.value)
    assert message.startswith("Kaggle API: downloading competition "
                              "'dogs-vs-cats-redux-kernels-edition' failed: RuntimeError: HTTP 403")
    assert SECRET not in message and caught.value.__cause__ is None


def test_offline_never_imports_the_client(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("KIT_OFFLINE", "1")
    _private(tmp_path / ".kaggle" / "kaggle.json", json.dumps({"username": "ann", "key": SECRET}))
    client = connect(env={}, home=tmp_path)
    with pytest.raises(KaggleError, match=r"KIT_OFFLINE is set, so the Kaggle API is not "
                                          r"contacted.*--archive FILE"):
        client.download("x", tmp_path)
    assert "kaggle.api" not in sys.modules


def test_client_needs_an_api_or_credentials() -> None:
    with pytest.raises(ValueError, match=r"KaggleClient needs api="):
        KaggleClient()


# ---------------------------------------------------------------- calls through the fake


def test_download_returns_the_archives(tmp_path: Path) -> None:
    fake = FakeKaggleApi()
    archives = KaggleClient(fake).download("dogs-vs-cats-redux-kernels-edition", tmp_path / "dl")
    assert [p.name for p in archives] == ["dogs-vs-cats-redux-kernels-edition.zip"]
    assert fake.calls == [("competition_download_files", "dogs-vs-cats-redux-kernels-edition",
                           str(tmp_path / "dl"), False, False)]


def test_download_that_leaves_nothing_says_to_accept_the_rules(tmp_path: Path) -> None:
    class Silent(FakeKaggleApi):
        def competition_download_files(self, competition, path=None, force=False, quiet=True):
            return None

    with pytest.raises(KaggleError, match=r"left no archive .*accept the competition rules at "
                                          r"https://www\.kaggle\.com/c/slug/rules"):
        KaggleClient(Silent()).download("slug", tmp_path)


def test_submit_and_fetch_scores(tmp_path: Path) -> None:
    fake = FakeKaggleApi(scores=[(None, None), ("0.91234", "1.05")])
    client = KaggleClient(fake)
    file = tmp_path / "run1.csv"
    file.write_text("id,label\n1,0.5\n")
    receipt = client.submit("slug", file, submission_message("run1", "first try"))
    assert receipt.ref == 1000 and receipt.message == "Successfully submitted"
    assert fake.calls[-1] == ("competition_submit", str(file), "[run1] first try", "slug", True)
    pending = find_submission(client.submissions("slug"), run_id="run1")
    assert pending is not None and pending.status == "pending" and pending.public is None
    done = find_submission(client.submissions("slug"), run_id="run1", ref=1000)
    assert done is not None
    assert (done.status, done.public, done.private) == ("complete", 0.91234, 1.05)
    assert find_submission(client.submissions("slug"), run_id="other") is None


def test_kernel_push(tmp_path: Path) -> None:
    (tmp_path / "kernel-metadata.json").write_text(json.dumps({"id": "ann/kit-fisheries"}))
    receipt = KaggleClient(FakeKaggleApi()).push_kernel(tmp_path)
    assert receipt.url == "https://www.kaggle.com/code/ann/kit-fisheries" and receipt.version == 1
    with pytest.raises(KaggleError, match=r"pushing kernel .* failed: Invalid dataset source"):
        KaggleClient(FakeKaggleApi(kernel_error="Invalid dataset source")).push_kernel(tmp_path)


def test_the_kaggle_package_is_imported_lazily() -> None:
    assert "kaggle" not in kaggle.__dict__  # kit.kaggle.client holds no reference to the client
    source = Path(kaggle.__file__).read_text()
    top_level = [line for line in source.splitlines()
                 if line.startswith(("import kaggle", "from kaggle"))]
    assert top_level == []
