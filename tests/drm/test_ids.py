import pickle

import pytest

from drm import DrmError, InvalidId, check_id


@pytest.mark.parametrize("value", ["a", "S01", "ep-3_final", "k_" + "A" * 22, "a" * 64, "9"])
def test_valid_ids_are_returned_unchanged(value):
    assert check_id("series_id", value) == value


@pytest.mark.parametrize(
    "value",
    ["../x", "", "a" * 65, "a/b", "-a", "_a", "a b", "a\n", "a.b", "é", "a|b", "..", None, 7],
)
def test_invalid_ids_are_rejected(value):
    with pytest.raises(InvalidId) as caught:
        check_id("episode_id", value)
    assert caught.value.code == "invalid_id"
    assert isinstance(caught.value, DrmError)
    message = str(caught.value)
    assert message.startswith("episode_id ")
    assert repr(value) in message
    assert "^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$" in message


def test_long_offending_value_is_truncated_in_message():
    with pytest.raises(InvalidId) as caught:
        check_id("viewer_id", "x" * 1000)
    shown = str(caught.value).split(" is not a valid id")[0].removeprefix("viewer_id ")
    assert len(shown) == 80
    assert shown.endswith("...")
    assert caught.value.value == "x" * 1000


def test_invalid_id_pickles_with_its_arguments():
    error = pickle.loads(pickle.dumps(InvalidId("series_id", "../x")))
    assert (error.kind, error.value, str(error)) == (
        "series_id",
        "../x",
        str(InvalidId("series_id", "../x")),
    )
