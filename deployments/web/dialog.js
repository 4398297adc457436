// The dialog as the page holds it: the API is stateless, so every round resends the query and every answered
// question (POST /v1/rounds). Renders the ranked scenes as cards, the question, the history and the end.
import { ApiError, config, rankRound, scene } from "./api.js";
import { floorPlan } from "./plan.js";
import { openScene } from "./scene.js";

const $ = (id) => document.getElementById(id);

function node(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else e.setAttribute(k, v);
  }
  e.append(...children);
  return e;
}

/** What one dialog holds; a new search starts a new one (`generation` lets late answers of the old one drop). */
export const dialog = {
  query: "", history: [], rankings: [], question: null, done: false, busy: false, generation: 0,
  target: null, // the simulated user's scene, when one runs
  onRanking: null, // called with (ids) after each ranking is drawn
};

export function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

export function setStatus(text) {
  $("status").textContent = text;
}

function setBusy(busy) {
  dialog.busy = busy;
  $("results").setAttribute("aria-busy", String(busy));
  for (const id of ["search", "send", "dont-know", "sim-run"]) $(id).disabled = busy;
  document.querySelectorAll(".pick").forEach((b) => { b.disabled = busy || dialog.done; });
}

/** "↑3", "↓1", "=", or "new" (not in the previous round's list). */
function movement(id, rank) {
  if (dialog.rankings.length < 2) return null;
  const before = dialog.rankings[dialog.rankings.length - 2].indexOf(id);
  if (before < 0) return { text: "new", label: "new in this round", cls: "up" };
  const d = before - rank;
  if (d > 0) return { text: `↑${d}`, label: `up ${d}`, cls: "up" };
  if (d < 0) return { text: `↓${-d}`, label: `down ${-d}`, cls: "down" };
  return { text: "=", label: "unchanged", cls: "same" };
}

function card(item, rank, plans) {
  const id = item.scene_id;
  const move = movement(id, rank);
  const plan = node("div", { class: "plan-box", "aria-busy": "true" },
    node("span", { class: "muted" }, "loading plan…"));
  const type = node("span", { class: "type" }, "");
  const details = node("button", { type: "button", class: "details" }, "Details");
  details.setAttribute("aria-label", `Details of ${id}`);
  details.addEventListener("click", () => openScene(id, dialog.query));
  const pick = node("button", { type: "button", class: "pick" }, "This one");
  pick.setAttribute("aria-label", `This one: ${id}`);
  pick.disabled = dialog.done;
  pick.addEventListener("click", () => finish(id));
  const head = node("div", { class: "card-head" }, node("span", { class: "rank" }, `#${rank + 1}`),
    node("span", { class: "sid" }, id));
  if (move) {
    head.append(node("span", { class: `move ${move.cls}`, title: move.label, "aria-label": move.label }, move.text));
  }
  if (id === dialog.target) head.append(node("span", { class: "badge" }, "target"));
  const li = node("li", { class: id === dialog.target ? "card target" : "card", "data-scene": id }, head, plan,
    node("div", { class: "meta" }, type, node("span", { class: "score" }, `score ${item.score.toFixed(3)}`)),
    node("div", { class: "actions" }, details, pick));
  plans.push(scene(id).then((s) => {
    type.textContent = s.scene_type;
    plan.replaceChildren(floorPlan(s, dialog.query));
    plan.setAttribute("aria-busy", "false");
  }).catch((e) => {
    plan.replaceChildren(node("span", { class: "error" }, `No plan: ${e.message}`));
    plan.setAttribute("aria-busy", "false");
  }));
  return li;
}

let firstCards = true; // the page's first ranking is marked for the time-to-first-ranking measurement

function render(res) {
  const ids = res.ranking.map((r) => r.scene_id);
  dialog.rankings.push(ids);
  dialog.question = res.question;
  const plans = [];
  $("cards").replaceChildren(...res.ranking.map((item, rank) => card(item, rank, plans)));
  $("results-heading").hidden = false;
  $("results-heading").textContent = `Ranking after round ${dialog.history.length}` +
    (dialog.history.length ? ` (${dialog.history.length} answered)` : " (the query alone)");
  if (firstCards) {
    firstCards = false;
    performance.mark("ideal:first-cards");
    Promise.all(plans).then(() => performance.mark("ideal:first-plans"));
  }
  $("history").replaceChildren(...dialog.history.map((t, i) => node("li", {},
    node("p", { class: "q" }, node("strong", {}, `Q${i + 1}: `), t.question),
    node("p", { class: "a" }, node("strong", {}, "A: "), t.answer))));
  $("history-heading").hidden = !dialog.history.length;
  $("dialog").hidden = false;
  $("ask").hidden = dialog.done || !res.question;
  $("question").textContent = res.question || "";
  $("answer-form").hidden = dialog.target !== null; // the simulated user answers
  if (dialog.onRanking) dialog.onRanking(ids);
}

/** Rank for the dialog so far; on failure the message is shown and the dialog stays as it was. */
async function runRound(gen) {
  setBusy(true);
  setStatus("Ranking…");
  showError("");
  try {
    const res = await rankRound(dialog.query, dialog.history);
    if (gen !== dialog.generation) return false;
    render(res);
    setStatus(`${res.ranking.length} scenes ranked.` + (res.question ? " The system asks a question." : ""));
    return true;
  } catch (e) {
    if (gen !== dialog.generation) return false;
    showError(e instanceof ApiError ? e.message : `Something went wrong: ${e.message}`);
    setStatus("");
    return false;
  } finally {
    if (gen === dialog.generation) setBusy(false);
  }
}

/** Start a new dialog from `query` (a simulated user's: its `target` and a hook called with each ranking's ids);
 * resolves true when its first ranking is shown. */
export async function search(query, target = null, onRanking = null) {
  dialog.generation += 1;
  Object.assign(dialog, { query, history: [], rankings: [], question: null, done: false, target, onRanking });
  $("done").hidden = true;
  $("trail").hidden = true;
  $("cards").replaceChildren();
  $("results-heading").hidden = true;
  $("dialog").hidden = true;
  return runRound(dialog.generation);
}

/** Answer the pending question and rank again; the answer is taken back if the round fails. */
export async function answer(text) {
  if (!dialog.question || dialog.done) return false;
  const gen = dialog.generation;
  dialog.history.push({ question: dialog.question, answer: text });
  const ok = await runRound(gen);
  if (!ok && gen === dialog.generation) dialog.history.pop();
  if (ok) $("answer").value = "";
  return ok;
}

export function finish(id) {
  dialog.done = true;
  const n = dialog.history.length;
  $("ask").hidden = true;
  $("done").hidden = false;
  $("done").textContent = n === 0 ? `Found ${id} from the query alone (round 0).`
    : `Found ${id} in round ${n}: it took ${n} question${n === 1 ? "" : "s"}.`;
  document.querySelectorAll(".pick").forEach((b) => { b.disabled = true; });
  document.querySelector(`[data-scene="${CSS.escape(id)}"]`)?.classList.add("chosen");
  $("done").setAttribute("tabindex", "-1");
  $("done").focus();
}

export function wire() {
  $("query-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (dialog.busy) return;
    if (await search($("query").value) && !$("ask").hidden) $("answer").focus();
  });
  $("answer-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!dialog.busy && await answer($("answer").value)) $("answer").focus();
  });
  $("dont-know").addEventListener("click", async () => {
    if (!dialog.busy && await answer(config.dontKnow)) $("answer").focus();
  });
}
