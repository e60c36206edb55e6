"""load_multilabel_arff: Mulan ARFF (dense and sparse rows) to tensors, with clear errors."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch

from icnn.data.arff import load_multilabel_arff
from icnn.data.mulan import label_count_from_xml, label_names_from_xml

# (name, n_features, n_labels, n_train, n_test, cardinality train, cardinality test, relation);
# numbers from shared/data/<name>/SOURCE.md.
MULAN = [
    ("bibtex", 1836, 159, 4880, 2515, 2.380, 2.444, "bibsonomy_bibtex"),
    ("yeast", 103, 14, 1500, 917, 4.228, 4.252, "MultiLabelData"),
    ("emotions", 72, 6, 391, 202, 1.813, 1.975, "musicout"),
    ("scene", 294, 6, 1211, 1196, 1.062, 1.086, "MultiLabelData"),
]

HEADER = """% a comment before the relation
@relation tiny

@attribute f1 numeric
@attribute f2 {low,mid,high}
@attribute 'label one' {0,1}
@attribute label_two numeric

@data
"""


def write(tmp_path: Path, text: str, name: str = "tiny.arff") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------- real Mulan files


@pytest.mark.parametrize("split", ["train", "test"])
@pytest.mark.parametrize(
    ("name", "n_features", "n_labels", "n_train", "n_test", "card_train", "card_test", "relation"),
    MULAN,
)
def test_mulan_file_has_published_shape_and_cardinality(
    data_dir, split, name, n_features, n_labels, n_train, n_test, card_train, card_test, relation
) -> None:
    folder = data_dir / name
    assert label_count_from_xml(folder / f"{name}.xml") == n_labels
    data = load_multilabel_arff(folder / f"{name}-{split}.arff", n_labels)

    n_examples = n_train if split == "train" else n_test
    assert data.features.shape == (n_examples, n_features)
    assert data.labels.shape == (n_examples, n_labels)
    assert data.features.dtype == data.labels.dtype == torch.float32
    assert set(data.labels.unique().tolist()) == {0.0, 1.0}
    expected_cardinality = card_train if split == "train" else card_test
    assert data.label_cardinality == pytest.approx(expected_cardinality, abs=0.01)
    assert data.relation == relation
    # Mulan finds labels by name: the .xml may list them in another order (yeast does).
    assert sorted(data.label_names) == sorted(label_names_from_xml(folder / f"{name}.xml"))
    assert not set(data.feature_names) & set(data.label_names)
    assert len(data.feature_names) == n_features


def test_bibtex_is_sparse_binary_and_loads_fast(data_dir) -> None:
    start = time.perf_counter()
    data = load_multilabel_arff(data_dir / "bibtex" / "bibtex-train.arff", 159)
    elapsed = time.perf_counter() - start
    assert set(data.features.unique().tolist()) == {0.0, 1.0}
    # Its first row starts "{0 1,5 1,6 1,20 1,...": features 0, 5, 6 and 20 are on, 1-4 off.
    assert data.features[0, [0, 5, 6, 20]].tolist() == [1.0, 1.0, 1.0, 1.0]
    assert data.features[0, 1:5].sum() == 0
    assert elapsed < 5.0, f"loading bibtex-train took {elapsed:.2f} s"


def test_yeast_xml_lists_labels_in_another_order_than_the_arff(data_dir) -> None:
    data = load_multilabel_arff(data_dir / "yeast" / "yeast-test.arff", 14)
    assert data.label_names == [f"Class{k}" for k in range(1, 15)]
    assert label_names_from_xml(data_dir / "yeast" / "yeast.xml")[3:5] == ["Class6", "Class4"]


def test_yeast_first_value_matches_the_file(data_dir) -> None:
    data = load_multilabel_arff(data_dir / "yeast" / "yeast-train.arff", 14, dtype=torch.float64)
    assert data.features.dtype == torch.float64
    assert data.features[0, :3].tolist() == [0.0937, 0.139771, 0.062774]


# ---------------------------------------------------------------- handwritten files


def test_dense_rows(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + "0.5,mid,1,0\n% a comment row\n\n-1.25,low,0,1\n")
    data = load_multilabel_arff(path, 2)
    assert data.relation == "tiny"
    assert data.feature_names == ["f1", "f2"]
    assert data.label_names == ["label one", "label_two"]
    # Non-numeric nominal features become the index of the declared value.
    assert data.features.tolist() == [[0.5, 1.0], [-1.25, 0.0]]
    assert data.labels.tolist() == [[1.0, 0.0], [0.0, 1.0]]


def test_sparse_rows_fill_implicit_zeros_and_first_nominal_values(tmp_path: Path) -> None:
    text = """@relation sparse
@attribute a numeric
@attribute b numeric
@attribute flag {1,0}
@attribute y1 {0,1}
@attribute y2 {0,1}
@data
{0 2.5,4 1}
{}
{1 -3,2 0,3 1}
"""
    data = load_multilabel_arff(write(tmp_path, text), 2)
    # An omitted nominal takes its FIRST declared value ('1' for flag), as in Weka.
    assert data.features.tolist() == [[2.5, 0.0, 1.0], [0.0, 0.0, 1.0], [0.0, -3.0, 0.0]]
    assert data.labels.tolist() == [[0.0, 1.0], [0.0, 0.0], [1.0, 0.0]]


def test_sparse_and_dense_rows_may_mix(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + "{0 4,1 high,3 1}\n0.5,mid,1,0\n")
    data = load_multilabel_arff(path, 2)
    assert data.features.tolist() == [[4.0, 2.0], [0.5, 1.0]]
    assert data.labels.tolist() == [[0.0, 1.0], [1.0, 0.0]]


def test_dtype_is_applied_to_both_tensors(tmp_path: Path) -> None:
    data = load_multilabel_arff(write(tmp_path, HEADER + "0.5,mid,1,0\n"), 2, dtype=torch.float64)
    assert data.features.dtype == data.labels.dtype == torch.float64


# ---------------------------------------------------------------- errors


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no file at"):
        load_multilabel_arff(tmp_path / "absent.arff", 2)


@pytest.mark.parametrize("n_labels", [0, -1, True, 2.0, "2"])
def test_n_labels_must_be_a_positive_int(tmp_path: Path, n_labels) -> None:
    path = write(tmp_path, HEADER + "0.5,mid,1,0\n")
    with pytest.raises(ValueError, match="n_labels to be a positive int"):
        load_multilabel_arff(path, n_labels)


@pytest.mark.parametrize("n_labels", [4, 5])
def test_n_labels_must_leave_a_feature(tmp_path: Path, n_labels: int) -> None:
    path = write(tmp_path, HEADER + "0.5,mid,1,0\n")
    with pytest.raises(ValueError, match=rf"number of attributes \(4.*n_labels={n_labels}"):
        load_multilabel_arff(path, n_labels)


def test_label_values_must_be_zero_or_one(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + "0.5,mid,1,0\n0.5,mid,1,2\n")
    with pytest.raises(ValueError, match=r"label values in \{0, 1\}.*2\.0.*row 1.*'label_two'"):
        load_multilabel_arff(path, 2)


def test_wrong_n_labels_is_caught_by_the_label_check(tmp_path: Path) -> None:
    # With n_labels=3 the nominal feature f2 would be a label: non-numeric nominal values.
    path = write(tmp_path, HEADER + "0.5,mid,1,0\n")
    with pytest.raises(ValueError, match="label attribute 'f2'"):
        load_multilabel_arff(path, 3)


def test_undeclared_nominal_value_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + "0.5,mid,1,0\n0.5,mid,7,0\n")
    with pytest.raises(ValueError, match=r"tiny\.arff.*\n  line 11: '0\.5,mid,7,0'"):
        load_multilabel_arff(path, 2)


def test_row_with_too_few_values_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + "0.5,mid,1\n")
    with pytest.raises(ValueError, match=r"could not parse ARFF.*\n  line 10: '0\.5,mid,1'"):
        load_multilabel_arff(path, 2)


def test_sparse_index_out_of_range_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + "{0 1,9 1}\n")
    with pytest.raises(ValueError, match=r"line 10: '\{0 1,9 1\}'"):
        load_multilabel_arff(path, 2)


def test_non_numeric_value_in_numeric_attribute(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + "abc,mid,1,0\n")
    with pytest.raises(ValueError, match="could not parse ARFF.*line 10"):
        load_multilabel_arff(path, 2)


def test_parse_error_keeps_the_liac_arff_exception(tmp_path: Path) -> None:
    import arff

    path = write(tmp_path, HEADER + "0.5,mid,1\n")
    with pytest.raises(ValueError) as info:
        load_multilabel_arff(path, 2)
    assert isinstance(info.value.__cause__, arff.ArffException)


@pytest.mark.parametrize("row", ["?,mid,1,0", "{0 ?,3 1}", "0.5,mid,1,?"])
def test_missing_values_are_rejected(tmp_path: Path, row: str) -> None:
    path = write(tmp_path, HEADER + "0.5,mid,1,0\n" + row + "\n")
    with pytest.raises(ValueError, match=r"missing \('\?'\) in data row 1"):
        load_multilabel_arff(path, 2)


def test_infinite_values_are_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + "inf,mid,1,0\n")
    with pytest.raises(ValueError, match="non-finite in data row 0.*'f1'"):
        load_multilabel_arff(path, 2)


def test_string_attributes_are_rejected(tmp_path: Path) -> None:
    text = "@relation s\n@attribute name string\n@attribute y {0,1}\n@data\nbob,1\n"
    with pytest.raises(ValueError, match="STRING attribute 'name'"):
        load_multilabel_arff(write(tmp_path, text), 1)


def test_file_without_rows_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least one data row"):
        load_multilabel_arff(write(tmp_path, HEADER), 2)


def test_file_without_data_section_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="could not parse ARFF"):
        load_multilabel_arff(write(tmp_path, "@relation r\n@attribute a numeric\n"), 1)


def test_integer_dtype_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="floating dtype"):
        load_multilabel_arff(write(tmp_path, HEADER + "0.5,mid,1,0\n"), 2, dtype=torch.int64)
