"""The IDeal page as the browser tests drive it: open, search, answer, read the cards; every wait is on DOM state."""
from selenium.webdriver.common.by import By

from .browser import wait


def open_page(driver, url: str, path: str = "/") -> None:
    driver.get(url + path)
    wait(driver, lambda d: d.execute_script("return document.documentElement.dataset.ready === 'true'"),
         message=f"the page at {path} never finished starting")


def _settled(driver, answered: int) -> bool:
    """A ranking is drawn for the dialog with `answered` answers, every card's plan in place."""
    return driver.execute_script("""
        const n = arguments[0];
        return document.getElementById('results').getAttribute('aria-busy') === 'false'
            && document.querySelectorAll('#history li').length === n
            && !document.getElementById('results-heading').hidden
            && document.getElementById('results-heading').textContent.startsWith(`Ranking after round ${n}`)
            && document.querySelectorAll('#cards .card').length > 0
            && document.querySelectorAll('#cards .plan-box[aria-busy="true"]').length === 0;""", answered)


def wait_ranking(driver, answered: int = 0) -> None:
    wait(driver, lambda d: _settled(d, answered), message=f"no ranking after {answered} answer(s)")


def search(driver, query: str) -> None:
    box = driver.find_element(By.ID, "query")
    box.clear()
    box.send_keys(query)
    driver.find_element(By.ID, "search").click()


def answer(driver, text: str, answered_before: int) -> None:
    box = driver.find_element(By.ID, "answer")
    box.clear()
    box.send_keys(text)
    driver.find_element(By.ID, "send").click()
    wait_ranking(driver, answered_before + 1)


def ranking(driver) -> list[tuple[str, str]]:
    """(scene id, score text) of every card, best first."""
    return [(c.get_attribute("data-scene"), c.find_element(By.CLASS_NAME, "score").text)
            for c in driver.find_elements(By.CSS_SELECTOR, "#cards .card")]


def history(driver) -> list[str]:
    return [li.text for li in driver.find_elements(By.CSS_SELECTOR, "#history li")]


def error_text(driver) -> str:
    wait(driver, lambda d: d.find_element(By.ID, "error").is_displayed(), message="no error shown")
    return driver.find_element(By.ID, "error").text
