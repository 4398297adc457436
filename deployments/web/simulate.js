// The simulated-user mode: a val description's simulated user answers each question from its target scene's
// memory (POST /v1/answers) and the page shows the target's rank round by round (the paper's case figures).
import { ApiError, examples, simulatedAnswer } from "./api.js";
import { answer, dialog, search, setStatus, showError } from "./dialog.js";

const $ = (id) => document.getElementById(id);
const STEP_MS = 700; // a pause between rounds, so a person can watch the ranking change
const pause = (ms) => new Promise((r) => setTimeout(r, ms));

let loaded = null; // the examples, once fetched
let running = false;

async function load() {
  const select = $("sim-example");
  try {
    loaded = await examples();
    select.replaceChildren(...loaded.map((ex, i) => {
      const o = document.createElement("option");
      o.value = String(i);
      o.textContent = `${ex.target} · ${ex.object_name}: ${ex.query}`;
      return o;
    }));
  } catch (e) {
    loaded = null;
    select.replaceChildren(new Option("no examples", ""));
    showError(e instanceof ApiError ? e.message : String(e));
  }
}

function trail(ranks, target, k) {
  const shown = ranks.map((r) => (r < 0 ? `>${k}` : String(r + 1)));
  $("trail").hidden = false;
  $("trail").textContent = `Target ${target}: rank ${shown.join(" → ")}`;
}

/** Run the dialog of example `ex` for up to `rounds` questions. */
export async function run(ex, rounds) {
  running = true;
  const ranks = [];
  let k = 0;
  const onRanking = (ids) => {
    k = ids.length;
    ranks.push(ids.indexOf(ex.target));
    trail(ranks, ex.target, k);
  };
  try {
    $("query").value = ex.query;
    if (!await search(ex.query, ex.target, onRanking)) return ranks;
    const gen = dialog.generation;
    for (let r = 0; r < rounds && dialog.question && !dialog.done; r++) {
      await pause(STEP_MS);
      if (gen !== dialog.generation) break; // the person started another search
      let text;
      try {
        text = await simulatedAnswer(dialog.query, dialog.history, ex.target, dialog.question, ex.desc_id);
      } catch (e) {
        showError(e instanceof ApiError ? e.message : String(e));
        break;
      }
      if (gen !== dialog.generation || !await answer(text)) break;
    }
    if (gen === dialog.generation) {
      const last = ranks[ranks.length - 1];
      const n = dialog.history.length;
      setStatus(`The simulated user answered ${n} question${n === 1 ? "" : "s"}; the target is ` +
        (last < 0 ? `not in the top ${k}.` : `at rank ${last + 1}.`));
    }
    return ranks;
  } finally {
    running = false;
  }
}

export function wire(enabled) {
  const sim = $("sim");
  sim.hidden = !enabled;
  if (!enabled) return;
  sim.addEventListener("toggle", () => { if (sim.open && !loaded) load(); });
  $("sim-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (running || dialog.busy) return;
    if (!loaded) await load();
    const ex = loaded?.[Number($("sim-example").value)];
    if (!ex) return;
    const rounds = Math.max(1, Math.min(10, Number($("sim-rounds").value) || 1));
    await run(ex, rounds);
  });
}
