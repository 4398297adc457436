"""The session's Serve app (tests/conftest.py `served`) and one headless Chromium per module. Browser tests skip,
saying what to install, where Debian's chromium / chromium-driver are missing (.ci/run installs them)."""
import pytest

from .browser import chrome, missing


@pytest.fixture(scope="module")
def web_app(served):
    """(base URL, resolved ServiceSpec) of the app "ideal" served at /."""
    return served.url, served.spec


@pytest.fixture(scope="module")
def url(web_app):
    return web_app[0]


@pytest.fixture(scope="module")
def browser():
    why = missing()
    if why:
        pytest.skip(why)
    driver = chrome()
    yield driver
    driver.quit()
