"""aclnet_kd.io: outputs appear whole or not at all."""

from __future__ import annotations

import pytest

from aclnet_kd.io import atomic_write_texts, staged_dir, staged_file


def test_staged_dir_replaces_on_success_and_keeps_the_old_folder_on_error(tmp_path):
    target = tmp_path / "out"
    with staged_dir(target) as tmp:
        (tmp / "a.txt").write_text("1")
    assert [p.name for p in target.iterdir()] == ["a.txt"]
    with pytest.raises(RuntimeError), staged_dir(target) as tmp:
        (tmp / "b.txt").write_text("2")
        raise RuntimeError("half-way")
    assert [p.name for p in target.iterdir()] == ["a.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temp folder left


def test_staged_dir_merge_keeps_other_files(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("k")
    with staged_dir(tmp_path / "out", merge=True) as tmp:
        (tmp / "new.txt").write_text("n")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["keep.txt", "new.txt"]


def test_atomic_write_texts_is_all_or_nothing(tmp_path):
    atomic_write_texts({tmp_path / "a.md": "x", tmp_path / "b.md": "y"})
    assert (tmp_path / "a.md").read_text() == "x" and (tmp_path / "b.md").read_text() == "y"
    with pytest.raises(RuntimeError), staged_file(tmp_path / "a.md") as tmp:
        tmp.write_text("changed")
        raise RuntimeError
    assert (tmp_path / "a.md").read_text() == "x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.md", "b.md"]
