// The console page: a hash router over the views; a run's page follows it live (SSE).
import { me, post } from "./api.js";
import { healthView, notice, runView, runsView, workflowsView } from "./views.js";

const main = document.getElementById("main");
let stream = null;

async function route() {
  if (stream) { stream.close(); stream = null; }
  const [path, query] = (window.location.hash.slice(1) || "/runs").split("?");
  const params = new URLSearchParams(query || "");
  try {
    if (path.startsWith("/run/")) {
      const runId = decodeURIComponent(path.slice(5));
      const refresh = () => runView(main, runId, refresh);
      await refresh();
      stream = new EventSource(`/console/api/runs/${encodeURIComponent(runId)}/events`);
      stream.addEventListener("change", () => refresh().catch((error) => notice(error.message)));
    } else if (path === "/workflows") await workflowsView(main);
    else if (path === "/health") await healthView(main);
    else await runsView(main, params);
  } catch (error) {
    notice(error.message);
  }
}

async function start() {
  const who = await me();
  document.getElementById("who").textContent = `${who.name} (${who.user})${who.admin ? " · admin" : ""}`;
  document.getElementById("sign-out").addEventListener("click", async () => {
    await post("/console/auth/logout", {});
    window.location.assign("/console/auth/login");
  });
  window.addEventListener("hashchange", () => { notice(""); route(); });
  await route();
}

start().catch((error) => notice(error.message));
