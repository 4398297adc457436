"""The six-room gallery of the round tests (tests/dialog/rounds.py) and its roles, built once per module."""
import pytest

from .rounds import make_gallery, make_questioner, make_user


@pytest.fixture(scope="module")
def gallery():
    return make_gallery()


@pytest.fixture(scope="module")
def questioner(gallery):
    return make_questioner(gallery)


@pytest.fixture(scope="module")
def user():
    return make_user()
