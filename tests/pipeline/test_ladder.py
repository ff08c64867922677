import pytest

from pipeline.encode.ladder import LadderSettings, plan_ladder


@pytest.mark.parametrize("width, height, expected", [
    (1920, 1080, [(1920, 1080), (1280, 720), (960, 540), (640, 360), (416, 234)]),
    (1080, 1920, [(1080, 1920), (720, 1280), (540, 960), (360, 640), (234, 416)]),
    (720, 720, [(720, 720), (540, 540), (360, 360), (234, 234)]),
    (640, 360, [(640, 360), (416, 234)]),
])
def test_ladder_by_short_side_keeps_orientation(width, height, expected):
    assert [(r.width, r.height) for r in plan_ladder(width, height)] == expected


def test_never_upscales_a_small_source():
    (only,) = plan_ladder(200, 120)
    assert (only.width, only.height) == (200, 120)


def test_max_renditions_keeps_the_best_rungs():
    assert [r.name for r in plan_ladder(1920, 1080, LadderSettings(max_renditions=2))] == ["1080p", "720p"]


def test_dimensions_are_even_for_420():
    for rendition in plan_ladder(1279, 719):
        assert rendition.width % 2 == 0 and rendition.height % 2 == 0
