"""The ground floor of file I/O: every stage writes and reads files through these few functions.

A stage that fails half-way must leave nothing behind (the workflow would otherwise take a half-written
file or folder for a finished one), so every output is written to a temp path beside its target (same file
system) and renamed into place only once it is complete:

* :func:`staged_file` / :func:`atomic_write_text` / :func:`atomic_write_texts`: one file, or several
  all-or-nothing;
* :func:`staged_dir`: a whole folder (replacing the old one, or merging its files into it);
* :func:`atomic_save` / :func:`safe_load`: torch files (``weights_only=True``; pickled code is refused).

No torch or cv2 at import: the ONNX path and the report import this module.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aclnet_kd.errors import AclnetError

# Image files every reader accepts (case-insensitive); anything else in an image folder is ignored.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _default_mode(path: str | os.PathLike, is_dir: bool) -> None:
    """mkstemp/mkdtemp create private (0600/0700) paths; give outputs the usual permissions instead."""
    os.chmod(path, (0o777 if is_dir else 0o666) & ~_umask())


@contextlib.contextmanager
def staged_file(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path beside ``target``; renamed over it on success, removed (with any ``.data``
    sidecar an exporter wrote beside it) on error."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        _default_mode(tmp, is_dir=False)
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)
        Path(tmp + ".data").unlink(missing_ok=True)


def atomic_write_texts(files: dict[str | os.PathLike, str]) -> None:
    """Write several text files all-or-nothing: every temp file first, then the renames."""
    with contextlib.ExitStack() as stack:
        staged = [(stack.enter_context(staged_file(target)), text) for target, text in files.items()]
        for tmp, text in staged:
            tmp.write_text(text, encoding="utf-8", newline="")
    # ExitStack closes the contexts in reverse order: every rename happens after every write.


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_texts({path: text})


@contextlib.contextmanager
def staged_dir(target: str | os.PathLike, merge: bool = False) -> Iterator[Path]:
    """Yield a fresh temp folder beside ``target``. On success it replaces ``target`` (``merge``: its files
    are moved into ``target`` instead, leaving other files there alone); on any error it is removed, so a
    reader never sees a half-written folder and a failed run leaves the old one untouched."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    _default_mode(tmp, is_dir=True)
    try:
        yield tmp
        if merge:
            target.mkdir(exist_ok=True)
            for path in sorted(tmp.iterdir()):
                os.replace(path, target / path.name)
            tmp.rmdir()
        elif target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _check_torch_container(path: Path) -> None:
    """Refuse what is neither torch.save's zip archive nor its legacy pickle format, naming the cause, so
    that random bytes are not reported as "pickled code" by the unpickler that would otherwise read them."""
    if zipfile.is_zipfile(path):
        return
    with open(path, "rb") as handle:
        head = handle.read(4)
    if head[:1] == b"\x80":          # pickle's PROTO opcode: the legacy (pre-1.6) torch.save format
        return
    if head == b"PK\x03\x04":
        raise AclnetError(f"{path}: not a readable torch checkpoint: a zip archive without its end (the file "
                          f"is truncated, e.g. an interrupted copy or download; {path.stat().st_size} bytes)")
    what = "the file is empty" if not head else f"it starts with bytes {head!r}"
    raise AclnetError(f"{path}: not a torch checkpoint: neither the zip archive torch.save writes nor the legacy "
                      f"pickle format ({what}); the file is corrupt or of another kind")


def safe_load(path: str | os.PathLike) -> Any:
    """Load a torch file with ``weights_only=True`` on the CPU, with clear errors naming ``path``."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise AclnetError(f"{path}: no such checkpoint file")
    _check_torch_container(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise AclnetError(
            f"{path}: refused to load: the file is not a plain weights file (it carries pickled objects or "
            f"code, which weights_only=True does not run). Details: {str(err).splitlines()[0]}"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        raise AclnetError(f"{path}: not a readable torch checkpoint ({str(err).splitlines()[0]})") from None


def atomic_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to a temp file beside ``path`` (flushed to disk), then rename it over ``path``."""
    import torch

    with staged_file(path) as tmp, open(tmp, "wb") as handle:
        torch.save(obj, handle)
        handle.flush()
        os.fsync(handle.fileno())


def read_json(path: str | os.PathLike) -> dict:
    """A JSON object from ``path``, with clear errors naming it (missing, not JSON, not an object)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise AclnetError(f"{path}: not found") from None
    except json.JSONDecodeError as err:
        raise AclnetError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise AclnetError(f"{path}: expected a JSON object")
    return data
