"""Mulan label XML: names and count."""

from __future__ import annotations

from pathlib import Path

import pytest

from icnn.data.mulan import label_count_from_xml, label_names_from_xml

XML = """<?xml version="1.0" encoding="utf-8"?>
<labels xmlns="http://mulan.sourceforge.net/labels">
<label name="sports"><label name="football"></label></label>
<label name="music"></label>
</labels>
"""


def test_nested_labels_all_count_in_document_order(tmp_path: Path) -> None:
    path = tmp_path / "toy.xml"
    path.write_text(XML)
    assert label_names_from_xml(path) == ["sports", "football", "music"]
    assert label_count_from_xml(path) == 3


def test_real_files(data_dir) -> None:
    counts = {"bibtex": 159, "yeast": 14, "emotions": 6, "scene": 6}
    for name, count in counts.items():
        assert label_count_from_xml(data_dir / name / f"{name}.xml") == count


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no file at"):
        label_count_from_xml(tmp_path / "absent.xml")


def test_not_xml(tmp_path: Path) -> None:
    path = tmp_path / "bad.xml"
    path.write_text("<labels><label name='a'>")
    with pytest.raises(ValueError, match="could not parse"):
        label_count_from_xml(path)


def test_no_labels(tmp_path: Path) -> None:
    path = tmp_path / "empty.xml"
    path.write_text("<labels></labels>")
    with pytest.raises(ValueError, match="at least one <label"):
        label_count_from_xml(path)
