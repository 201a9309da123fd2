import pytest

from prosima.optional import MissingExtraError, available, require


def test_missing_extra_names_the_install_command():
    with pytest.raises(MissingExtraError, match=r"pip install 'prosima\[bench\]'"):
        require("surely_not_an_installed_module", "bench")
    assert not available("surely_not_an_installed_module")


def test_present_module_is_returned():
    assert require("json", "core").dumps([1]) == "[1]"
