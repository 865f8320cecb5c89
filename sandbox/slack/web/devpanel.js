// The developer panel: every signed request the emulator sent the app and every Web API
// call the app made, newest last, each expandable to its headers and JSON bodies.

import { el } from "./mrkdwn.js";

const MAX_ROWS = 500;

function clock(seconds) {
  const d = new Date(seconds * 1000);
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

function pretty(value) {
  return typeof value === "string" ? value : JSON.stringify(value, null, 2);
}

export class DevPanel {
  constructor() {
    this.panel = document.getElementById("devpanel");
    this.list = document.getElementById("devlog");
    this.count = document.getElementById("dev-count");
    this.after = 0;
    this.total = 0;
    this.busy = false;
    this.again = false;
    this.hiddenBefore = 0;
    for (const id of ["dev-toggle", "dev-close"]) {
      document.getElementById(id).addEventListener("click", () => this.toggle());
    }
    for (const id of ["dev-in", "dev-out"]) {
      document.getElementById(id).addEventListener("change", () => this.applyFilter());
    }
    document.getElementById("dev-clear").addEventListener("click", () => {
      this.list.replaceChildren();
      this.total = 0;
      this.count.textContent = "";
    });
  }

  get open() {
    return !this.panel.classList.contains("collapsed");
  }

  toggle(force) {
    const open = force ?? !this.open;
    this.panel.classList.toggle("collapsed", !open);
    document.body.classList.toggle("dev-open", open);
    localStorage.setItem("sandbox.dev", open ? "1" : "");
    if (open) this.list.scrollTop = this.list.scrollHeight;
  }

  applyFilter() {
    const showIn = document.getElementById("dev-in").checked;
    const showOut = document.getElementById("dev-out").checked;
    for (const row of this.list.children) {
      const incoming = row.dataset.kind === "delivery";
      row.hidden = incoming ? !showIn : !showOut;
    }
  }

  async poll() {
    if (this.busy) {
      this.again = true;
      return;
    }
    this.busy = true;
    try {
      const res = await fetch(`/sandbox/devlog?after=${this.after}`);
      const body = await res.json();
      const atBottom = this.list.scrollHeight - this.list.scrollTop - this.list.clientHeight < 40;
      for (const entry of body.entries) {
        this.after = Math.max(this.after, entry.seq);
        this.list.append(this.row(entry));
        this.total += 1;
      }
      while (this.list.children.length > MAX_ROWS) this.list.firstChild.remove();
      this.count.textContent = this.total ? String(this.total) : "";
      this.applyFilter();
      if (atBottom) this.list.scrollTop = this.list.scrollHeight;
    } catch (err) {
      // The server is restarting or gone; the next change event polls again.
    } finally {
      this.busy = false;
      if (this.again) {
        this.again = false;
        this.poll();
      }
    }
  }

  row(entry) {
    const incoming = entry.kind === "delivery";
    const status = entry.status === 0 ? entry.error || "failed" : String(entry.status);
    const details = el("div", { class: "dev-details", hidden: true });
    const summary = el(
      "button",
      {
        type: "button",
        class: "dev-summary",
        onclick: () => {
          if (!details.childElementCount) this.fill(details, entry);
          details.hidden = !details.hidden;
        },
      },
      el("span", { class: "dev-time" }, clock(entry.at)),
      el("span", { class: `dev-dir ${incoming ? "in" : "out"}` }, entry.direction),
      el("span", { class: "dev-title" }, entry.title),
      el("span", { class: `dev-status ${entry.ok ? "ok" : "bad"}` }, status + (entry.error && entry.status ? ` ${entry.error}` : "")),
      entry.elapsed_ms !== undefined ? el("span", { class: "dev-ms" }, `${entry.elapsed_ms} ms`) : null,
      entry.retry_num ? el("span", { class: "dev-retry" }, `retry ${entry.retry_num}`) : null,
    );
    return el("li", { class: "dev-row", dataset: { kind: entry.kind } }, summary, details);
  }

  fill(details, entry) {
    const section = (title, value) =>
      value === undefined || value === null || (typeof value === "object" && !Object.keys(value).length)
        ? null
        : el("div", { class: "dev-section" }, el("div", { class: "dev-label" }, title), el("pre", {}, pretty(value)));
    details.append(
      section("Request headers", entry.request_headers),
      section(entry.kind === "delivery" ? "Request body (signed)" : "Arguments", entry.request),
      section("Response headers", entry.headers),
      section("Response", entry.response),
    );
  }
}
