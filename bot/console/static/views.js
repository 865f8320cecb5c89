// Views: DOM built from data with textContent only (never markup), so nothing a run
// carries can become code. The CSP (script-src 'self') is the second lock.
import { get, post } from "./api.js";

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "on") for (const [event, fn] of Object.entries(value)) node.addEventListener(event, fn);
    else if (value !== null && value !== undefined && value !== false) node.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const when = (iso) => (iso ? new Date(iso).toLocaleString() : "");
const ms = (value) => (value === null || value === undefined ? "" : value < 1000 ? `${value} ms` : `${(value / 1000).toFixed(1)} s`);

export function notice(text) {
  const box = document.getElementById("notice");
  box.textContent = text;
  box.hidden = !text;
}

function table(headers, rows) {
  return el("table", {}, el("thead", {}, el("tr", {}, headers.map((h) => el("th", {}, h)))), el("tbody", {}, rows));
}

// ------------------------------------------------------------------ runs list

const FILTERS = ["q", "workflow", "status", "requester", "trigger", "since", "until"];

export async function runsView(main, params) {
  const form = el("form", { id: "filters" },
    FILTERS.map((name) => el("label", {}, name === "q" ? "search" : name,
      el("input", { name, value: params.get(name) || "", placeholder: name === "q" ? "text or run id" : "" }))),
    el("button", { type: "submit" }, "Filter"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const chosen = new URLSearchParams();
    for (const [name, value] of new FormData(form)) if (value) chosen.set(name, value);
    window.location.hash = "#/runs?" + chosen.toString();
  });
  const query = Object.fromEntries([...params].filter(([name, value]) => value && (FILTERS.includes(name) || name === "cursor")));
  const found = await get("/console/api/runs", query);
  const rows = found.runs.map((run) => el("tr", { "data-run": run.id },
    el("td", {}, el("a", { href: `#/run/${encodeURIComponent(run.id)}` }, run.id)),
    el("td", {}, run.workflow), el("td", { class: `status ${run.status}` }, run.status),
    el("td", {}, run.requester || ""), el("td", {}, run.trigger || ""),
    el("td", {}, run.text), el("td", {}, when(run.created_at))));
  const more = found.next
    ? el("a", { id: "next-page", href: "#/runs?" + new URLSearchParams({ ...query, cursor: found.next }).toString() }, "Older runs →")
    : null;
  main.replaceChildren(el("h1", {}, "Runs"), form,
    rows.length ? table(["run", "workflow", "status", "requester", "trigger", "request", "started"], rows) : el("p", {}, "No runs match."),
    more);
}

// ------------------------------------------------------------------ one run

export async function runView(main, runId, refresh) {
  const page = await get(`/console/api/runs/${encodeURIComponent(runId)}`);
  const run = page.run;
  const header = el("section", { id: "run-summary" },
    el("h1", {}, `Run ${run.id}`),
    el("p", {}, `${run.workflow} · `, el("span", { id: "run-status", class: `status ${run.status}` }, run.status),
      ` · requested by ${run.requester || run.trigger || "?"} · ${when(run.created_at)}`),
    el("p", { class: "request" }, run.text),
    page.thread && /^https?:\/\//.test(page.thread) ? el("p", {}, el("a", { id: "thread-link", href: page.thread, rel: "noopener" }, "Open the Slack thread")) : null,
    run.error ? el("p", { class: "error" }, run.error) : null,
    el("p", { class: "muted" }, `definition ${String(page.definition.version || "live").slice(0, 12)}`,
      page.definition.live ? " (live)" : " (an earlier version)", page.definition.problem ? ` — ${page.definition.problem}` : ""));
  const boxes = [header, actionsBox(page, refresh), stepsBox(page.steps), approvalsBox(page.approvals),
    assignmentsBox(page.assignments), auditBox(page.audit)];
  main.replaceChildren(...boxes.filter((box) => box !== null));
}

function actionsBox(page, refresh) {
  const run = page.run;
  const finished = ["succeeded", "failed", "rejected", "cancelled", "timed_out"].includes(run.status);
  const reason = el("input", { id: "action-reason", placeholder: "reason (for the audit trail)" });
  const step = el("select", { id: "retry-step" }, page.steps.map((s) => el("option", { value: s.id }, s.id)));
  const act = async (name, question, extra = {}) => {
    if (!window.confirm(question)) return;
    try {
      const answer = await post(`/console/api/runs/${encodeURIComponent(run.id)}/${name}`, { reason: reason.value, ...extra });
      notice(answer.message);
    } catch (error) {
      notice(error.message);
    }
    await refresh();
  };
  const open = page.approvals.some((gate) => gate.status === "open");
  return el("section", { id: "actions" }, el("h2", {}, "Actions"), reason,
    finished ? null : el("button", { type: "button", id: "cancel-run", on: { click: () => act("cancel", `Cancel run ${run.id}?`) } }, "Cancel run"),
    finished ? el("span", {}, step, el("button", { type: "button", id: "retry-run",
      on: { click: () => act("retry", `Re-run ${run.id} from ${step.value}?`, { step: step.value }) } }, "Retry from step")) : null,
    open && !finished ? el("button", { type: "button", id: "remind-now", on: { click: () => act("remind", "Remind the approvers now?") } }, "Remind now") : null);
}

function stepsBox(steps) {
  const rows = steps.map((step) => {
    const last = step.jobs.length ? step.jobs[step.jobs.length - 1] : {};
    const retry = step.retry ? `${step.retry.attempts} tries, ${step.retry.backoff}` : "";
    return el("tr", { "data-step": step.id },
      el("td", {}, step.id), el("td", {}, step.kind), el("td", { class: `status ${step.status}` }, step.status),
      el("td", {}, String(step.jobs.filter((j) => j.job_kind === "step").reduce((n, j) => n + j.attempt, 0))),
      el("td", {}, ms(last.queue_delay_ms)), el("td", {}, ms(last.duration_ms)),
      el("td", {}, last.error ? el("span", { class: "error" }, last.error, ` (retry: ${retry})`) : ""),
      el("td", {}, when(step.next_due)),
      el("td", {}, step.output ? el("details", {}, el("summary", {}, "output"), el("pre", {}, step.output)) : ""));
  });
  return el("section", { id: "steps" }, el("h2", {}, "Steps"),
    table(["step", "kind", "status", "attempts", "queue delay", "duration", "error", "next due", "output"], rows));
}

function approvalsBox(gates) {
  if (!gates.length) return null;
  return el("section", { id: "approvals" }, el("h2", {}, "Approvals"), table(["step", "status", "may decide", "decisions", "times out"],
    gates.map((g) => el("tr", {}, el("td", {}, g.step), el("td", { class: `status ${g.status}` }, g.status),
      el("td", {}, g.approvers.join(", ")), el("td", {}, g.decisions.map((d) => `${d.user}: ${d.decision}`).join("; ")),
      el("td", {}, when(g.timeout_at))))));
}

function assignmentsBox(rows) {
  if (!rows.length) return null;
  return el("section", { id: "assignments" }, el("h2", {}, "Assignments"), table(["step", "label", "owner", "status", "claimed by"],
    rows.map((a) => el("tr", {}, el("td", {}, a.step), el("td", {}, a.label || a.predicted || ""), el("td", {}, a.owner),
      el("td", {}, a.status), el("td", {}, a.claimed_by || "")))));
}

function auditBox(records) {
  const broken = records.some((r) => r.chain === "broken");
  return el("section", { id: "audit" }, el("h2", {}, "Audit"),
    el("p", { id: "chain", class: broken ? "error" : "muted" }, broken ? "hash chain: BROKEN" : "hash chain: verified for sealed records"),
    table(["when", "action", "step", "who", "chain"], records.map((r) => el("tr", { "data-action": r.action },
      el("td", {}, when(r.at)), el("td", {}, r.action), el("td", {}, r.step || ""), el("td", {}, r.actor), el("td", {}, r.chain)))));
}

// ------------------------------------------------------------------ workflows, health

export async function workflowsView(main) {
  const found = await get("/console/api/workflows");
  const cycle = (c) => (c ? `p50 ${c.p50} s, p90 ${c.p90} s` : "");
  main.replaceChildren(el("h1", {}, "Workflows"), table(["workflow", "version", "triggers", "steps", `last ${found.days} days`, "cycle time"],
    found.workflows.map((w) => el("tr", {}, el("td", {}, w.name, w.title ? ` — ${w.title}` : ""), el("td", {}, w.version.slice(0, 12)),
      el("td", {}, w.triggers.map((t) => [t.kind, t.next_fires ? ` next ${when(t.next_fires[0])}` : "", t.webhook_path ? ` ${t.webhook_path}` : ""].join("")).join("; ")),
      el("td", {}, w.steps.map((s) => `${s.id} (${s.kind})`).join(", ")),
      el("td", {}, Object.entries(w.outcomes).map(([k, v]) => `${k} ${v}`).join(", ")), el("td", {}, cycle(w.cycle_s))))));
}

export async function healthView(main) {
  const h = await get("/console/api/health");
  const line = (label, value) => el("tr", {}, el("th", {}, label), el("td", {}, value === null || value === undefined ? "" : String(value)));
  main.replaceChildren(el("h1", {}, "Health"), el("table", { id: "health" }, el("tbody", {},
    line("database", h.database_up ? "up" : "DOWN"), line("jobs due", h.jobs_due), line("oldest due job (s)", h.oldest_due_job_age_s),
    line("approvals pending", h.approvals_pending), line("oldest approval (s)", h.oldest_approval_age_s),
    line("workers", h.workers.map((w) => `${w.owner}: ${w.jobs} jobs`).join("; ") || "none busy"),
    line("breakers", Object.entries(h.breakers).map(([k, v]) => `${k} ${v}`).join(", ") || "all closed"))));
}
