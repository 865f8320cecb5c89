// The console's JSON API: every action carries the session's CSRF token and a fresh key.
let csrf = "";

export async function me() {
  const body = await get("/console/api/me");
  csrf = body.csrf;
  return body;
}

export async function get(path, params) {
  const query = params ? "?" + new URLSearchParams(params).toString() : "";
  const response = await fetch(path + query, { credentials: "same-origin" });
  if (response.status === 401) {
    window.location.assign("/console/auth/login");
    throw new Error("signed out");
  }
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

export async function post(path, body) {
  const response = await fetch(path, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
    body: JSON.stringify({ ...body, key: freshKey() }),
  });
  const answer = await response.json();
  if (!response.ok) throw new Error(answer.error || response.statusText);
  return answer;
}

function freshKey() {
  const bytes = new Uint8Array(12);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
