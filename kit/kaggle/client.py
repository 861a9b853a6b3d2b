"""The Kaggle boundary: credentials, and download, submit, scores and kernel push via the API.

The `kaggle` package authenticates when it is imported (and may go to the network to check a
token), so it is imported only when a call needs it. Credentials are found where the Kaggle
client itself looks, in its order:

1. an access token: `KAGGLE_API_TOKEN` (the token, or the path of a file holding it), then
   `~/.kaggle/access_token` (or `access_token.txt`);
2. a legacy API key: `kaggle.json` in `$KAGGLE_CONFIG_DIR`, `~/.kaggle` or
   `$XDG_CONFIG_HOME/kaggle`, with `KAGGLE_USERNAME` / `KAGGLE_KEY` taking precedence;
3. OAuth credentials saved by `kaggle auth login` in `~/.kaggle/credentials.json`.

A credentials file readable by other users gets a warning. Secrets are never printed or
logged: :class:`Credentials` hides them in its repr, and every error raised here has them
replaced by ``***``. With `KIT_OFFLINE` set (the tests set it) the real client is never
imported; tests hand :class:`KaggleClient` a fake `api` object instead.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import stat
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kit.core.errors import InputError

__all__ = [
    "Credentials",
    "KaggleClient",
    "KaggleError",
    "KernelReceipt",
    "RemoteSubmission",
    "store_scores",
    "SubmitReceipt",
    "connect",
    "find_credentials",
    "find_submission",
    "permission_warning",
    "redact",
    "submission_message",
]

TOKEN_ENV = "KAGGLE_API_TOKEN"
USERNAME_ENV = "KAGGLE_USERNAME"
KEY_ENV = "KAGGLE_KEY"
CONFIG_DIR_ENV = "KAGGLE_CONFIG_DIR"
OFFLINE_ENV = "KIT_OFFLINE"
REDACTED = "***"

Warn = Callable[[str], None]

# `key": "abc`, `token=abc`, `Authorization: Bearer abc`: whatever follows such a word is hidden.
_SECRET_PATTERN = re.compile(
    r"(?i)((?:api[_-]?key|key|token|access_token|refresh_token|password|secret|authorization)"
    r"[\"']?\s*[:=]\s*[\"']?(?:bearer\s+|basic\s+)?)([^\s\"',;}]+)"
)


class KaggleError(InputError):
    """Credentials are missing or a Kaggle API call failed; the message never holds a secret."""


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with each of `secrets` and anything that looks like `key=...` replaced by ***.

    Example:
        >>> redact('{"username": "ann", "key": "0123abcd"}', ["0123abcd"])
        '{"username": "ann", "key": "***"}'
    """
    for secret in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return _SECRET_PATTERN.sub(lambda m: m.group(1) + REDACTED, text)


@dataclass(frozen=True, kw_only=True)
class Credentials:
    """Where Kaggle credentials were found; the secret itself never shows in a repr.

    Args:
        kind: `access_token`, `api_key` or `oauth`.
        source: where they came from (an environment variable name or a file path).
        username: the Kaggle user name where known (access tokens are resolved online).
        secrets: the secret values, kept only to redact them from messages.
        warnings: e.g. a credentials file readable by other users.
    """

    kind: str
    source: str
    username: str | None = None
    secrets: tuple[str, ...] = field(default=(), repr=False)
    warnings: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return (f"Credentials(kind={self.kind!r}, source={self.source!r}, "
                f"username={self.username!r}, secrets={REDACTED!r})")

    __str__ = __repr__

    def redact(self, text: str) -> str:
        return redact(text, self.secrets)


def permission_warning(path: Path) -> str | None:
    """A warning when the credentials file `path` is readable by its group or other users."""
    if os.name == "nt":
        return None
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return None
    if mode & 0o044:
        return (f"warning: the Kaggle credentials file {path} is readable by other users "
                f"(mode {mode:04o}); run `chmod 600 {path}`")
    return None


def config_dir(env: Mapping[str, str], home: Path) -> Path:
    """The folder of `kaggle.json`, chosen as the Kaggle client chooses it."""
    if env.get(CONFIG_DIR_ENV):
        return Path(env[CONFIG_DIR_ENV]).expanduser()
    legacy = home / ".kaggle"
    if sys.platform.startswith("linux") and not legacy.exists():
        return Path(env.get("XDG_CONFIG_HOME") or home / ".config") / "kaggle"
    return legacy


def _read_text(path: Path) -> str | None:
    try:
        text = path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None
    return text or None


def _token(env: Mapping[str, str], home: Path) -> Credentials | None:
    value = env.get(TOKEN_ENV)
    if value:
        path = Path(value).expanduser()
        if path.is_file():
            token = _read_text(path)
            if token:
                return Credentials(kind="access_token", source=str(path),
                                   username=env.get(USERNAME_ENV), secrets=(token,),
                                   warnings=tuple(filter(None, [permission_warning(path)])))
        else:
            return Credentials(kind="access_token", source=TOKEN_ENV,
                               username=env.get(USERNAME_ENV), secrets=(value,))
    for name in ("access_token", "access_token.txt"):
        path = home / ".kaggle" / name
        token = _read_text(path) if path.is_file() else None
        if token:
            return Credentials(kind="access_token", source=str(path),
                               username=env.get(USERNAME_ENV), secrets=(token,),
                               warnings=tuple(filter(None, [permission_warning(path)])))
    return None


def _api_key(env: Mapping[str, str], home: Path) -> Credentials | None:
    path = config_dir(env, home) / "kaggle.json"
    values: dict[str, Any] = {}
    warnings = []
    if path.is_file():
        warning = permission_warning(path)
        if warning:
            warnings.append(warning)
        try:
            loaded = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            loaded = None
        if isinstance(loaded, dict):
            values = loaded
        else:
            warnings.append(f"warning: {path} is not a JSON object with username and key; "
                            "download a new one from https://www.kaggle.com/settings")
    username = env.get(USERNAME_ENV) or values.get("username")
    key = env.get(KEY_ENV) or values.get("key")
    if not (isinstance(username, str) and isinstance(key, str) and username and key):
        return None
    from_env = bool(env.get(KEY_ENV))
    return Credentials(kind="api_key", source=f"{USERNAME_ENV}/{KEY_ENV}" if from_env else str(path),
                       username=username, secrets=(key,),
                       warnings=tuple(warnings) if not from_env else ())


def _oauth(home: Path) -> Credentials | None:
    path = home / ".kaggle" / "credentials.json"
    if not path.is_file():
        return None
    try:
        loaded = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(loaded, dict):
        return None
    username = loaded.get("username") if isinstance(loaded.get("username"), str) else None
    secrets = tuple(v for k, v in loaded.items() if isinstance(v, str) and k != "username")
    return Credentials(kind="oauth", source=str(path), username=username, secrets=secrets,
                       warnings=tuple(filter(None, [permission_warning(path)])))


def find_credentials(*, env: Mapping[str, str] | None = None,
                     home: Path | None = None) -> Credentials | None:
    """The credentials the Kaggle client would use, or None (nothing is sent anywhere).

    Args:
        env: environment variables (default: `os.environ`).
        home: the home folder (default: `Path.home()`).
    """
    env = os.environ if env is None else env
    home = Path.home() if home is None else Path(home)
    return _token(env, home) or _api_key(env, home) or _oauth(home)


def missing_credentials_message(env: Mapping[str, str] | None = None,
                                home: Path | None = None) -> str:
    env = os.environ if env is None else env
    home = Path.home() if home is None else Path(home)
    return (
        "no Kaggle credentials found. Either put kaggle.json (https://www.kaggle.com/settings, "
        f"'Create New Token') at {config_dir(env, home) / 'kaggle.json'} and chmod 600 it; or "
        f"set {USERNAME_ENV} and {KEY_ENV}; or set {TOKEN_ENV} (or save the token to "
        f"{home / '.kaggle' / 'access_token'}). Without credentials, download the archives by "
        "hand and pass them with --archive FILE"
    )


# ---------------------------------------------------------------- results


@dataclass(frozen=True, kw_only=True)
class RemoteSubmission:
    """One submission as Kaggle lists it; scores are None until Kaggle has them."""

    ref: int | None
    description: str
    file_name: str
    date: str | None
    status: str
    public: float | None
    private: float | None
    error: str = ""


def submission_message(run_id: str, message: str) -> str:
    """The description a submission is sent with: the run id in brackets, then `message`."""
    return f"[{run_id}] {message}".strip()


def find_submission(remote: Iterable[RemoteSubmission], *, run_id: str,
                    ref: int | None = None) -> RemoteSubmission | None:
    """The Kaggle submission of a run: by reference where known, else the newest whose
    description carries `[run_id]`."""
    remote = list(remote)
    if ref is not None:
        for item in remote:
            if item.ref == ref:
                return item
    tag = f"[{run_id}]"
    for item in remote:  # Kaggle lists the newest first
        if tag in item.description:
            return item
    return None


@dataclass(frozen=True, kw_only=True)
class SubmitReceipt:
    """Kaggle's answer to a submission: its reference (None if not given) and message."""

    ref: int | None
    message: str


@dataclass(frozen=True, kw_only=True)
class KernelReceipt:
    """Kaggle's answer to a kernel push."""

    ref: str
    url: str
    version: int | None


def _score(value: object) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _status(value: object) -> str:
    name = getattr(value, "name", None)
    return str(name if name is not None else value).lower()


# ---------------------------------------------------------------- the client


def _real_api(credentials: Credentials) -> Any:
    """Imports the `kaggle` package (which authenticates) and returns its authenticated API."""
    if os.environ.get(OFFLINE_ENV):
        raise KaggleError(
            f"{OFFLINE_ENV} is set, so the Kaggle API is not contacted; unset it to use the "
            "network, or download the archives by hand and pass them with --archive FILE"
        )
    chatter = io.StringIO()  # the client prints warnings and help at import; ours are clearer
    try:
        with contextlib.redirect_stdout(chatter), contextlib.redirect_stderr(chatter):
            from kaggle.api.kaggle_api_extended import KaggleApi

            api = KaggleApi()
            api.authenticate()
    except ImportError:
        raise KaggleError(
            "the kaggle package is not installed: pip install kaggle (a dependency of kit)"
        ) from None
    except SystemExit:
        raise KaggleError(
            f"Kaggle rejected the credentials from {credentials.source}; "
            + missing_credentials_message()
        ) from None
    except Exception as error:  # noqa: BLE001 - any failure here is reported, secrets hidden
        raise KaggleError(
            f"cannot authenticate with Kaggle using {credentials.source}: "
            f"{credentials.redact(str(error))}"
        ) from None
    return api


class KaggleClient:
    """The Kaggle calls kit makes, with errors turned into :class:`KaggleError`.

    Args:
        api: an object with the `kaggle.KaggleApi` methods kit uses
            (`competition_download_files`, `competition_submit`, `competition_submissions`,
            `kernels_push`); None imports and authenticates the real client on first use.
        credentials: where the credentials come from; used to authenticate and to redact.
    """

    def __init__(self, api: Any = None, *, credentials: Credentials | None = None) -> None:
        if api is None and credentials is None:
            raise InputError("KaggleClient needs api= (a KaggleApi or a fake) or credentials=")
        self._api = api
        self.credentials = credentials

    def __repr__(self) -> str:
        return f"KaggleClient(credentials={self.credentials!r})"

    @property
    def api(self) -> Any:
        if self._api is None:
            self._api = _real_api(self.credentials)  # type: ignore[arg-type]  # see __init__
        return self._api

    def _call(self, what: str, method: str, *args: Any, **kwargs: Any) -> Any:
        api = self.api
        try:
            return getattr(api, method)(*args, **kwargs)
        except KaggleError:
            raise
        except Exception as error:  # noqa: BLE001 - the API raises many types; all are reported
            secrets = self.credentials.secrets if self.credentials else ()
            detail = redact(f"{type(error).__name__}: {error}", secrets)
            raise KaggleError(f"Kaggle API: {what} failed: {detail}") from None

    def download(self, slug: str, folder: Path) -> list[Path]:
        """Downloads the competition's files into `folder` (the client skips an up-to-date
        download); returns the archives there.

        Raises:
            KaggleError: the call failed (rules not accepted, unknown slug, network...).
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self._call(f"downloading competition {slug!r}", "competition_download_files", slug,
                   path=str(folder), force=False, quiet=False)  # quiet=False: a progress bar
        archives = sorted(p for p in folder.iterdir()
                          if p.is_file() and p.suffix.lower() in (".zip", ".7z", ".csv"))
        if not archives:
            raise KaggleError(
                f"Kaggle API: downloading competition {slug!r} left no archive in {folder}; "
                f"accept the competition rules at https://www.kaggle.com/c/{slug}/rules and try "
                "again"
            )
        return archives

    def submit(self, slug: str, file: Path, message: str) -> SubmitReceipt:
        """Uploads a submission CSV with `message` as its description."""
        response = self._call(f"submitting {file} to {slug!r}", "competition_submit",
                              str(file), message, slug, quiet=True)
        text = str(getattr(response, "message", "") or "")
        ref = getattr(response, "ref", None)
        if text == "Could not submit to competition":
            raise KaggleError(f"Kaggle API: submitting {file} to {slug!r} failed: {text}")
        return SubmitReceipt(ref=int(ref) if isinstance(ref, int) and ref else None, message=text)

    def submissions(self, slug: str) -> list[RemoteSubmission]:
        """The user's submissions to the competition, newest first, with their scores."""
        listed = self._call(f"listing submissions of {slug!r}", "competition_submissions", slug)
        out = []
        for item in listed or []:
            if item is None:
                continue
            ref = getattr(item, "ref", None)
            date = getattr(item, "date", None)
            out.append(RemoteSubmission(
                ref=int(ref) if isinstance(ref, int) and ref else None,
                description=str(getattr(item, "description", "") or ""),
                file_name=str(getattr(item, "file_name", "") or ""),
                date=None if date is None else str(date),
                status=_status(getattr(item, "status", "unknown")),
                public=_score(getattr(item, "public_score", None)),
                private=_score(getattr(item, "private_score", None)),
                error=str(getattr(item, "error_description", "") or ""),
            ))
        return out

    def push_kernel(self, folder: Path) -> KernelReceipt:
        """Pushes the kernel folder (`kernel-metadata.json` and its script)."""
        response = self._call(f"pushing kernel {folder}", "kernels_push", str(folder))
        error = str(getattr(response, "error", "") or "")
        if error:
            secrets = self.credentials.secrets if self.credentials else ()
            raise KaggleError(f"Kaggle API: pushing kernel {folder} failed: {redact(error, secrets)}")
        version = getattr(response, "version_number", None)
        return KernelReceipt(ref=str(getattr(response, "ref", "") or ""),
                             url=str(getattr(response, "url", "") or ""),
                             version=int(version) if isinstance(version, int) else None)


def connect(*, warn: Warn | None = None, env: Mapping[str, str] | None = None,
            home: Path | None = None) -> KaggleClient:
    """A client for the credentials found (warnings go to `warn`); the `kaggle` package is
    imported only at the first call.

    Raises:
        KaggleError: no credentials anywhere the Kaggle client looks.
    """
    credentials = find_credentials(env=env, home=home)
    if credentials is None:
        raise KaggleError(missing_credentials_message(env, home))
    for warning in credentials.warnings:
        if warn is not None:
            warn(warning)
    return KaggleClient(credentials=credentials)


def store_scores(db: Path, competition: str, run_id: str, remote: RemoteSubmission) -> None:
    """Put Kaggle's status and scores of a submission into the local leaderboard."""
    from kit.scoring import leaderboard as board

    board.set_kaggle(db, competition, run_id, board.KaggleScores(
        ref=remote.ref, status=remote.status, public=remote.public, private=remote.private))
