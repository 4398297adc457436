"""One real local Serve app per test module (a 10-scene gallery built once per module, as in
tests/deployments/test_serve.py) and one headless Chromium per module. Browser tests skip, saying what to
install, where Debian's chromium / chromium-driver are missing (.ci/run installs them)."""
import pytest

from . import serve_app
from .browser import chrome, missing


@pytest.fixture(scope="module")
def web_app(tmp_path_factory):
    """(base URL, resolved ServiceSpec) of the app "ideal" served at /."""
    gallery = serve_app.small_gallery(tmp_path_factory.mktemp("web"))
    url, spec = serve_app.start(gallery)
    yield url, spec
    serve_app.stop()


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
