"""Headless Chromium driven by selenium: Debian's `chromium` and `chromium-driver` (apt), no browser download.
Console messages are kept (goog:loggingPrefs) so a test can ask for the page's errors."""
import os
import shutil

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
WAIT_S = 60  # a round on a shared 2-core machine may take seconds; DOM waits end as soon as the state is reached


def missing() -> str | None:
    """Why no browser can start here (None when one can)."""
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not (os.path.exists(path) or shutil.which(path)):
            return f"{path} not found: apt-get install -y {package}"
    return None


def chrome(width: int = 1280, height: int = 900) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={width},{height}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # an explicit driver path: selenium's own download attempt is never made
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def wait(driver, condition, timeout: float = WAIT_S, message: str = ""):
    """Wait on the DOM until condition(driver) is truthy, and return it."""
    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(condition, message)


def console_errors(driver) -> list[dict]:
    """The page's SEVERE console entries since the last call (reading the log empties it)."""
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
