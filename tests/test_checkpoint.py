"""Safe checkpoint I/O: weights_only loads, refused pickles, atomic saves."""

from __future__ import annotations

import os
import pickle

import pytest
import torch

from aclnet_kd.checkpoint import atomic_save, safe_load
from aclnet_kd.errors import AclnetError
from aclnet_kd.models import load_model_checkpoint


class _Payload:
    """Unpickling this would run os.system: a checkpoint carrying code."""

    def __reduce__(self):
        return (os.system, ("touch PWNED_BY_PICKLE",))


def test_round_trip(tmp_path):
    obj = {"state_dict": {"w": torch.arange(6.0).reshape(2, 3)}, "meta": {"epoch": 3, "name": "x"}}
    atomic_save(obj, tmp_path / "a.pt")
    back = safe_load(tmp_path / "a.pt")
    assert torch.equal(back["state_dict"]["w"], obj["state_dict"]["w"])
    assert back["meta"] == {"epoch": 3, "name": "x"}
    assert [p.name for p in tmp_path.iterdir()] == ["a.pt"]  # no temp file left behind


def test_pickled_code_is_refused_and_never_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pt"
    with open(path, "wb") as handle:
        pickle.dump({"state_dict": _Payload()}, handle)
    with pytest.raises(AclnetError, match="evil.pt.*refused"):
        safe_load(path)
    assert not (tmp_path / "PWNED_BY_PICKLE").exists()


def test_missing_and_garbage_files(tmp_path):
    with pytest.raises(AclnetError, match="no such checkpoint"):
        safe_load(tmp_path / "nope.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(AclnetError, match="junk.pt: not a torch checkpoint") as info:
        safe_load(tmp_path / "junk.pt")
    assert "pickled" not in str(info.value)   # random bytes are not reported as pickled code
    (tmp_path / "random.pt").write_bytes(bytes(range(7, 256)) * 4)
    with pytest.raises(AclnetError, match="random.pt: not a torch checkpoint.*corrupt or of another kind"):
        safe_load(tmp_path / "random.pt")
    atomic_save({"w": torch.zeros(1000)}, tmp_path / "whole.pt")
    data = (tmp_path / "whole.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(AclnetError, match="cut.pt: .*truncated"):
        safe_load(tmp_path / "cut.pt")


def test_failed_save_keeps_the_old_file(tmp_path):
    atomic_save({"v": torch.tensor(1)}, tmp_path / "c.pt")

    class Unsaveable:
        def __reduce__(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        atomic_save({"v": Unsaveable()}, tmp_path / "c.pt")
    assert safe_load(tmp_path / "c.pt")["v"].item() == 1
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]


def test_load_model_checkpoint_rejects_foreign_dicts(tmp_path):
    atomic_save({"weights": torch.zeros(1)}, tmp_path / "foreign.pt")
    with pytest.raises(AclnetError, match="not an aclnet-kd training checkpoint"):
        load_model_checkpoint(tmp_path / "foreign.pt")
