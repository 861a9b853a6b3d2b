from pathlib import Path

from kit.core.paths import Paths
from kit.core.tf_runtime import ONEDNN_ENV, configure_environment


def test_paths_from_options_and_environment(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KIT_WORK_DIR", raising=False)
    monkeypatch.delenv("KIT_SUBMISSIONS_DIR", raising=False)
    default = Paths.from_options()
    assert default.work == tmp_path / ".kit" and default.submissions == tmp_path / "submissions"
    monkeypatch.setenv("KIT_WORK_DIR", str(tmp_path / "w"))
    assert Paths.from_options().work == tmp_path / "w"
    explicit = Paths.from_options(work=tmp_path / "x", submissions=tmp_path / "s")
    assert explicit.work == tmp_path / "x"
    assert explicit.submission_dir("fisheries") == tmp_path / "s" / "fisheries"
    assert explicit.run_dir("fisheries", "abc") == tmp_path / "x" / "runs" / "fisheries" / "abc"


def test_onednn_default_never_overrides_the_user():
    env: dict[str, str] = {}
    configure_environment(env)
    assert env[ONEDNN_ENV] == "1"
    env = {ONEDNN_ENV: "0"}
    configure_environment(env)
    assert env[ONEDNN_ENV] == "0"
