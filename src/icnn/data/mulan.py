"""Mulan's ``<name>.xml`` label list, which says which ARFF attributes are labels."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from os import PathLike
from pathlib import Path


def label_names_from_xml(path: str | PathLike[str]) -> list[str]:
    """Names of all ``<label name="...">`` elements of a Mulan label file, in document order.

    Mulan files look like ``<labels xmlns="http://mulan.sourceforge.net/labels"><label
    name="TAG_2005"></label>...</labels>``; hierarchical files nest labels, and every nested
    label counts. The namespace is ignored.

    Raises:
        FileNotFoundError: if ``path`` is not a file.
        ValueError: if the file is not XML or contains no labels.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"expected a Mulan label XML file, got no file at {path}")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        message = f"{path}: expected a Mulan label XML file, could not parse it: {exc}"
        raise ValueError(message) from exc
    names = [
        element.get("name", "")
        for element in root.iter()
        if element.tag.rsplit("}", 1)[-1] == "label"
    ]
    if not names:
        raise ValueError(f"{path}: expected at least one <label name=...> element, found none")
    return names


def label_count_from_xml(path: str | PathLike[str]) -> int:
    """Number of labels listed in a Mulan label file (the ``n_labels`` of its ARFF files)."""
    return len(label_names_from_xml(path))
