"""The simulated-user mode: GET /v1/examples and POST /v1/answers over HTTP (every bad input a 4xx with a reason),
the page's simulated dialog equal to the eval job's dialog through the handles (the same answers, the target's
rank falling the same way), and an app built without the simulated user, under a route prefix, that says so."""
import httpx
import pytest
from ray import serve
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from deployments.app import build_app
from ideal import build
from ideal.dialog_eval import queries

from .browser import wait
from .page import history, open_page, ranking, search, wait_ranking
from .serve_app import ZERO

pytestmark = pytest.mark.integration


def test_examples_are_the_evaluation_descriptions_spread_over_scenes(url, web_app):
    descs = {d.desc_id: d for d in queries(build.open_gallery(web_app[1].gallery).descriptions())}
    got = httpx.get(url + "/v1/examples?n=4", timeout=60).json()["examples"]
    assert len(got) == 4 and len({e["target"] for e in got}) > 1
    for e in got:
        d = descs[e["desc_id"]]
        assert (e["query"], e["target"], e["object_name"]) == (d.text, d.scene_id, d.object_name)
    assert len(httpx.get(url + "/v1/examples", timeout=60).json()["examples"]) == min(20, len(descs))


def simulated(ex: dict, rounds: int) -> dict:
    """The eval job's dialog for this description, through the handles (tests/deployments/test_serve.py shows it
    equals the eval job's shard)."""
    return serve.get_app_handle("ideal").simulate.remote(ex["query"], ex["target"], rounds,
                                                         ex["desc_id"]).result(timeout_s=120)


def test_http_answers_are_the_simulated_user_of_an_evaluation(url):
    ex = httpx.get(url + "/v1/examples?n=2", timeout=60).json()["examples"][1]
    want = simulated(ex, 2)
    turns = []
    with httpx.Client(base_url=url, timeout=60) as c:
        for question, answer in want["history"]:
            r = c.post("/v1/rounds", json={"query": ex["query"], "history": turns}).json()
            assert r["question"] == question
            res = c.post("/v1/answers", json={"query": ex["query"], "history": turns, "target": ex["target"],
                                              "question": question, "dialog_id": ex["desc_id"]})
            assert res.status_code == 200, res.text
            assert res.json() == {"answer": answer}
            turns.append({"question": question, "answer": answer})


BAD = [  # T: a scene of the gallery, so each body is refused for the reason named
    (b'{"query": "a chair", "question": "Which room?"}', 422, "target is missing"),
    (b'{"query": "a chair", "target": "scene9999_00", "question": "Which room?"}', 422,
     "target 'scene9999_00' is not a scene of the gallery"),
    (b'{"query": "a chair", "target": "T", "question": "Q?", "k": 3}', 422,
     "unknown field(s) k; fields: query, history, target, question, dialog_id"),
    (b'{"query": "", "target": "T", "question": "Q?"}', 422, "query is empty"),
    (b'{"query": "a chair", "history": [{"question": "Q?"}], "target": "T", "question": "Q?"}', 422,
     "history[0] must be an object with exactly 'question' and 'answer'"),
    (b'{"query": "a chair", "target": "T", "question": "Q?", "dialog_id": 7}', 422, "dialog_id must be a string"),
    (b'{"query": "a chair", ', 400, "malformed JSON"),
]


@pytest.mark.parametrize("body,status,reason", BAD, ids=[r[:28] for _, _, r in BAD])
def test_bad_answer_requests_are_4xx_with_a_reason(url, body, status, reason):
    scene = httpx.get(url + "/v1/examples?n=1", timeout=60).json()["examples"][0]["target"]
    res = httpx.post(url + "/v1/answers", content=body.replace(b'"T"', f'"{scene}"'.encode()),
                     headers={"content-type": "application/json"}, timeout=60)
    assert res.status_code == status, res.text
    assert reason in res.json()["detail"]


@pytest.mark.parametrize("n", ["0", "101", "x", "-1", "1.5", ""])
def test_a_bad_example_count_is_422_with_a_reason(url, n):
    res = httpx.get(url + "/v1/examples", params={"n": n}, timeout=60)
    assert res.status_code == 422 and res.json()["detail"].startswith("n must be an integer between 1 and 100")


def test_the_page_runs_the_simulated_dialog_of_an_evaluation(url, browser):
    """Pick a description, run 3 rounds: the answers and the target's rank per round are the eval job's."""
    open_page(browser, url)
    browser.find_element(By.CSS_SELECTOR, "#sim summary").click()
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#sim-example option[value='1']"))
    Select(browser.find_element(By.ID, "sim-example")).select_by_value("1")
    rounds = browser.find_element(By.ID, "sim-rounds")
    rounds.clear()
    rounds.send_keys("3")
    browser.find_element(By.ID, "sim-run").click()
    wait_ranking(browser, 3)
    ex = httpx.get(url + "/v1/examples", timeout=60).json()["examples"][1]
    want = simulated(ex, 3)
    assert history(browser) == [f"Q{i + 1}: {q}\nA: {a}" for i, (q, a) in enumerate(want["history"])]
    trail = browser.find_element(By.ID, "trail").text
    assert trail == f"Target {ex['target']}: rank " + " → ".join(str(r + 1) for r in want["ranks"])
    status = f"The simulated user answered 3 questions; the target is at rank {want['ranks'][-1] + 1}."
    wait(browser, lambda d: d.find_element(By.ID, "status").text == status)
    target = browser.find_element(By.CSS_SELECTOR, "#cards .card.target")
    assert target.get_attribute("data-scene") == ex["target"] and "target" in target.text
    assert browser.find_element(By.ID, "query").get_attribute("value") == ex["query"]
    assert not browser.find_element(By.ID, "answer-form").is_displayed()  # the simulated user answers
    # a person's search afterwards is a normal dialog again
    search(browser, "the brown chair next to the table")
    wait_ranking(browser, 0)
    assert browser.find_element(By.ID, "answer-form").is_displayed()
    assert not browser.find_elements(By.CSS_SELECTOR, "#cards .card.target")


def test_an_app_without_the_simulated_user_under_a_route_prefix(url, web_app, browser):
    spec = web_app[1]
    serve.run(build_app({"gallery": spec.gallery, "weights": spec.weights, "simulated_user": False,
                         "deployment_options": {n: dict(ZERO) for n in ("Ingress", "Retriever", "Questioner")}}),
              name="nosim", route_prefix="/nosim")
    try:
        why = "this app was built without the simulated user (AppArgs.simulated_user is false)"
        res = httpx.get(url + "/nosim/v1/examples", timeout=60)
        assert res.status_code == 404 and res.json() == {"detail": why}
        res = httpx.post(url + "/nosim/v1/answers", json={"query": "a chair", "target": "x", "question": "Q?"},
                         timeout=60)
        assert res.status_code == 404 and res.json() == {"detail": why}
        # the page works under the prefix (its URLs are relative to it) and offers no simulated user
        open_page(browser, url, "/nosim/")
        assert not browser.find_element(By.ID, "sim").is_displayed()
        search(browser, "the brown chair next to the table")
        wait_ranking(browser, 0)
        sid = ranking(browser)[0][0]
        assert browser.execute_script("return performance.getEntriesByType('resource').filter("
                                      "r => r.name.includes('/nosim/v1/')).length") > 1
        open_page(browser, url, f"/nosim/scenes/{sid}")
        wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#scene-body table.objects"))
    finally:
        serve.delete("nosim")
