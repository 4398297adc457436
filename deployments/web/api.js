// The HTTP API as the page uses it: every failure becomes an Error whose message a person can read.
// URLs are relative to the page's <base> (the app's route prefix), so the app works under any prefix.

export const config = JSON.parse(document.getElementById("config").textContent);

export class ApiError extends Error {}

function reason(status, statusText, body) {
  // the API answers {"detail": reason}; a proxy in between may answer HTML
  try {
    const detail = JSON.parse(body).detail;
    if (typeof detail === "string") return detail;
    if (detail !== undefined) return JSON.stringify(detail);
  } catch (e) { /* not JSON: say what the status was */ }
  return statusText || "no reason given";
}

async function call(path, options = {}) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), config.timeoutMs);
  let res;
  try {
    res = await fetch(path, { ...options, signal: controller.signal });
  } catch (e) {
    if (e.name === "AbortError") {
      throw new ApiError(`The server did not answer within ${Math.round(config.timeoutMs / 1000)} s. Try again.`);
    }
    throw new ApiError("Cannot reach the server: check that the app is running, then try again.");
  } finally {
    clearTimeout(timer);
  }
  const body = await res.text();
  if (!res.ok) {
    const kind = res.status < 500 ? "The request was refused" : "The server failed";
    throw new ApiError(`${kind} (HTTP ${res.status}): ${reason(res.status, res.statusText, body)}`);
  }
  try {
    return JSON.parse(body);
  } catch (e) {
    throw new ApiError(`The server sent an unreadable answer (HTTP ${res.status}).`);
  }
}

function post(path, body) {
  return call(path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
}

/** One round: {ranking: [{scene_id, score}], question, round}. history: [{question, answer}]. */
export function rankRound(query, history) {
  return post("v1/rounds", { query, history });
}

const scenes = new Map(); // scene id -> Promise of the scene (scenes do not change while the app runs)

/** {scene_id, scene_type, objects: [{object_id, label, center, size, color_rgb}]}, fetched once per scene. */
export function scene(id) {
  if (!scenes.has(id)) {
    const p = call(`v1/scenes/${encodeURIComponent(id)}`);
    p.catch(() => scenes.delete(id)); // a failed fetch is tried again next time
    scenes.set(id, p);
  }
  return scenes.get(id);
}

/** Val descriptions for the simulated user: [{desc_id, query, target, object_name}]. */
export async function examples(n = 20) {
  return (await call(`v1/examples?n=${n}`)).examples;
}

/** The simulated user's answer to `question` in the dialog (query, history) about scene `target`. */
export async function simulatedAnswer(query, history, target, question, dialogId) {
  return (await post("v1/answers", { query, history, target, question, dialog_id: dialogId })).answer;
}
