"""``icnn.nn.validation`` is the switch; the module of checks is reachable under its own name."""

import importlib

import icnn


def test_the_validation_switch_does_not_hide_the_checks_module():
    module = importlib.import_module("icnn.nn.input_checks")
    assert callable(icnn.nn.validation) and icnn.validation is module.validation
    assert icnn.nn.input_checks is module  # not shadowed by a function of the same name
    assert hasattr(module, "check_tensor")
