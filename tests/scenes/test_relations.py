"""Relations on hand-made boxes: each predicate true in one layout and false in a near miss."""
import numpy as np

from ideal.scenes import relations as rel
from ideal.scenes.types import Scene, SceneObject


def box(oid, label, lo, hi):
    lo, hi = np.array(lo, float), np.array(hi, float)
    return SceneObject(oid, label, tuple((lo + hi) / 2), tuple(hi - lo), (0.5, 0.5, 0.5))


TABLE = box(1, "table", (1, 1, 0), (2, 2, 0.75))


def test_on_needs_contact_and_support_below_centre():
    assert rel.is_on(box(2, "cup", (1.4, 1.4, 0.75), (1.5, 1.5, 0.85)), TABLE)
    assert not rel.is_on(box(2, "cup", (1.4, 1.4, 0.9), (1.5, 1.5, 1.0)), TABLE)  # floating 15 cm above
    assert not rel.is_on(box(2, "cup", (2.1, 1.4, 0.75), (2.2, 1.5, 0.85)), TABLE)  # beside, at the same height


def test_next_to_and_near_by_gap():
    chair = box(2, "chair", (2.2, 1.2, 0), (2.7, 1.7, 0.9))  # 20 cm from the table
    far_chair = box(3, "chair", (3.5, 1.2, 0), (4.0, 1.7, 0.9))  # 1.5 m away
    assert rel.horizontal_gap(chair, TABLE) == 0.2 or abs(rel.horizontal_gap(chair, TABLE) - 0.2) < 1e-9
    assert rel.is_next_to(chair, TABLE) and rel.is_near(chair, TABLE)
    assert not rel.is_next_to(far_chair, TABLE) and not rel.is_near(far_chair, TABLE)


def test_above_but_not_on():
    picture = box(2, "picture", (1.2, 1.95, 1.3), (1.8, 2.0, 1.8))
    assert rel.is_above(picture, TABLE)
    assert not rel.is_above(TABLE, picture)
    assert not rel.is_above(box(3, "picture", (4, 1.95, 1.3), (4.6, 2.0, 1.8)), TABLE)  # far to the side


def test_closest_and_farthest_need_a_margin():
    door = box(9, "door", (0, 0, 0), (0.1, 0.9, 2))
    chairs = [box(i, "chair", (x, 0.2, 0), (x + 0.5, 0.7, 0.9)) for i, x in ((2, 0.5), (3, 2.0), (4, 4.0))]
    assert rel.is_closest(chairs[0], chairs, door) and not rel.is_closest(chairs[1], chairs, door)
    assert rel.is_farthest(chairs[2], chairs, door) and not rel.is_farthest(chairs[1], chairs, door)
    tie = [chairs[0], box(5, "chair", (0.55, 0.3, 0), (1.05, 0.8, 0.9))]  # 5% farther: no clear "closest"
    assert not rel.is_closest(tie[0], tie, door)
    assert not rel.is_closest(chairs[0], chairs[:1], door)  # a single chair is not "the closest chair"


def test_between_on_the_segment_only():
    a, b = box(1, "bed", (0, 0, 0), (1, 1, 0.5)), box(2, "desk", (4, 0, 0), (5, 1, 0.75))
    assert rel.is_between(box(3, "chair", (2.2, 0.2, 0), (2.8, 0.8, 0.9)), a, b)
    assert not rel.is_between(box(3, "chair", (2.2, 3.0, 0), (2.8, 3.6, 0.9)), a, b)  # off the line
    assert not rel.is_between(box(3, "chair", (5.5, 0.2, 0), (6.0, 0.8, 0.9)), a, b)  # beyond b


def test_walls_and_corners_from_the_floor():
    floor = box(0, "floor", (0, 0, -0.05), (5, 4, 0))
    in_corner = box(1, "plant", (0.05, 0.05, 0), (0.5, 0.5, 0.9))
    on_wall = box(2, "couch", (2, 0.05, 0), (4, 0.95, 0.8))
    middle = box(3, "table", (2, 1.5, 0), (3, 2.5, 0.75))
    bounds = rel.room_bounds(Scene("s", "Office", [floor, in_corner, on_wall, middle]))
    assert list(bounds) == [0, 0, 5, 4]
    assert rel.is_in_corner(in_corner, bounds) and rel.is_against_wall(in_corner, bounds)
    assert rel.is_against_wall(on_wall, bounds) and not rel.is_in_corner(on_wall, bounds)
    assert not rel.is_against_wall(middle, bounds)
