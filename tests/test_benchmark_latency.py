"""``icnn benchmark latency --quick`` on a tiny energy prints one row per method and budget,
with finite positive ratios (no timing assertions: only that the table is complete)."""

import math

from icnn import cli

METHODS = ("pgd", "lbfgs", "bundle", "bundle_entropy")


def _rows(out: str) -> dict[tuple[str, int, str, str], list[str]]:
    rows = {}
    for line in out.splitlines():
        fields = line.split()
        if fields and fields[0] == "tiny":
            name, batch, method = fields[0], int(fields[1]), fields[2]
            width = 2 if fields[3] in ("iter", "tol") else 1  # "iter 5", "tol 0.0001", "LP"
            budget = " ".join(fields[3:3 + width])
            rows[(name, batch, method, budget)] = fields[3 + width:]
    return rows


def test_quick_latency_table_has_every_row_with_positive_ratios(capsys, restore_threads):
    argv = ["benchmark", "latency", "--", "--quick", "--sizes", "tiny", "--batches", "1", "3",
            "--iters", "2", "4", "--repeats", "1", "--threads", "1"]
    assert cli.main(argv) == 0
    rows = _rows(capsys.readouterr().out)
    expected = {("tiny", batch, method, f"iter {n}") for batch in (1, 3) for method in METHODS
                for n in (2, 4)}
    # exact (tiny is a ReLU energy) only at batch 1, as the reference
    expected.add(("tiny", 1, "exact", "LP"))
    assert set(rows) == expected
    for key, fields in rows.items():
        (iters, grads, values, ms, grad_ms, own_ms, x_evals, x_own, x_floor, handle_ms,
         handle_x, autograd_ms, compiled_ms, compiled_x, model_ms, handle_xm, compiled_xm) = fields
        assert compiled_ms == compiled_x == compiled_xm == "-"  # no --compile
        assert math.isfinite(float(model_ms)) and float(model_ms) > 0
        if key[2] == "exact":  # no gradient evaluations to count
            assert handle_xm == "-"
        else:
            assert math.isfinite(float(handle_xm)) and float(handle_xm) > 0
        assert int(values) >= 0
        if key[2] != "exact":  # tol=0 runs until max_iter or an exact minimum (gap 0)
            assert 1 <= int(iters) <= int(key[3].split()[1]) and int(grads) >= int(iters)
        for number in (ms, grad_ms, own_ms, x_evals, x_own, handle_ms, handle_x, autograd_ms):
            assert math.isfinite(float(number)) and float(number) > 0
        if key[2] == "exact":
            assert x_floor == "-"
        else:
            assert math.isfinite(float(x_floor)) and float(x_floor) > 0


def test_compiled_columns_are_filled_with_compile(capsys, restore_threads):
    argv = ["benchmark", "latency", "--", "--quick", "--sizes", "tiny", "--batches", "2",
            "--iters", "3", "--repeats", "1", "--threads", "1", "--compile", "eager"]
    assert cli.main(argv) == 0
    rows = _rows(capsys.readouterr().out)
    assert {key[2] for key in rows} == set(METHODS)
    for fields in rows.values():
        compiled_ms, compiled_x, compiled_xm = fields[12], fields[13], fields[16]
        for number in (compiled_ms, compiled_x, compiled_xm):
            assert math.isfinite(float(number)) and float(number) > 0
