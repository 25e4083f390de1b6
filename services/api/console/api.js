// The JSON API under api/v1 (relative, so the console works behind a proxy).
// The bearer token lives in this tab's sessionStorage; the event stream never
// sees it: it uses the HttpOnly cookie set by POST events/session.

const TOKEN_KEY = "escalations.token";

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.detail) || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
    this.code = this.body.error || null;
    this.detail = this.body.detail || null;
  }
}

let unauthorizedHandler = () => {};

export function onUnauthorized(handler) {
  unauthorizedHandler = handler;
}

export function getToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function clearToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

/** The token's claims, read without verifying (the server verifies); null if unreadable. */
export function readClaims(token) {
  try {
    const part = token.split(".")[1];
    const json = atob(part.replace(/-/g, "+").replace(/_/g, "/"));
    const bytes = Uint8Array.from(json, (c) => c.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes));
    if (!claims.sub || !claims.role || !claims.org) return null;
    return claims;
  } catch {
    return null;
  }
}

async function request(method, path, { body, headers = {}, auth = true } = {}) {
  const init = { method, headers: { Accept: "application/json", ...headers }, cache: "no-store" };
  const token = getToken();
  if (auth && token) init.headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(`api/v1/${path}`, init);
  let data = null;
  if (response.status !== 204) {
    try {
      data = await response.json();
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    if (response.status === 401 && auth) unauthorizedHandler();
    throw new ApiError(response.status, data);
  }
  return data;
}

function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") search.set(key, value);
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

const id = (handoffId) => encodeURIComponent(handoffId);

export const api = {
  listHandoffs: (params = {}) => request("GET", `handoffs${query(params)}`),
  getHandoff: (handoffId) => request("GET", `handoffs/${id(handoffId)}`),
  history: (handoffId) => request("GET", `handoffs/${id(handoffId)}/history`),
  createHandoff: (body, idempotencyKey) =>
    request("POST", "handoffs", { body, headers: { "Idempotency-Key": idempotencyKey } }),
  claim: (handoffId) => request("POST", `handoffs/${id(handoffId)}/claim`),
  release: (handoffId) => request("POST", `handoffs/${id(handoffId)}/release`),
  resolve: (handoffId, notes) =>
    request("POST", `handoffs/${id(handoffId)}/resolve`, { body: { resolution_notes: notes } }),
  cancel: (handoffId) => request("POST", `handoffs/${id(handoffId)}/cancel`),
  retryAssessment: (handoffId) => request("POST", `handoffs/${id(handoffId)}/assessment/retry`),
  reassign: (handoffId, body) => request("POST", `handoffs/${id(handoffId)}/reassign`, { body }),
  analytics: (params = {}) => request("GET", `analytics/escalations${query(params)}`),
  openStreamSession: () => request("POST", "events/session"),
  closeStreamSession: () => request("DELETE", "events/session", { auth: false }),
  demoSignIn: (role) => request("POST", "demo/sign-in", { body: { role }, auth: false }),
  me: () => request("GET", "me"),
  presence: () => request("GET", "presence"),
  teams: (params = {}) => request("GET", `teams${query(params)}`),
  people: () => request("GET", "people"),
  createTeam: (body) => request("POST", "teams", { body }),
  replaceTeam: (teamId, body) => request("PUT", `teams/${id(teamId)}`, { body }),
  deleteTeam: (teamId) => request("DELETE", `teams/${id(teamId)}`),
  policy: () => request("GET", "escalation-policy"),
  putPolicy: (body) => request("PUT", "escalation-policy", { body }),
  webhooks: () => request("GET", "webhooks"),
  createWebhook: (body) => request("POST", "webhooks", { body }),
  patchWebhook: (webhookId, body) => request("PATCH", `webhooks/${id(webhookId)}`, { body }),
  deleteWebhook: (webhookId) => request("DELETE", `webhooks/${id(webhookId)}`),
  rotateWebhookSecret: (webhookId) => request("POST", `webhooks/${id(webhookId)}/rotate-secret`),
  testWebhook: (webhookId) => request("POST", `webhooks/${id(webhookId)}/test`),
  deliveries: (webhookId, params = {}) => request("GET", `webhooks/${id(webhookId)}/deliveries${query(params)}`),
  redeliver: (webhookId, deliveryId) =>
    request("POST", `webhooks/${id(webhookId)}/deliveries/${id(deliveryId)}/redeliver`),
};

/** Every team of the org, by name, a page of 100 at a time; ``{members: false}``
 * gives summaries (``member_count``) instead of member lists. */
export async function allTeams(params = {}) {
  const items = [];
  let cursor = null;
  do {
    const page = await api.teams({ ...params, limit: 100, cursor });
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor);
  return { items };
}

/** Every page of a listing (up to ``maxPages`` of ``limit``), in queue order. */
export async function listAll(params, { limit = 200, maxPages = 10 } = {}) {
  const items = [];
  let cursor = null;
  for (let page = 0; page < maxPages; page += 1) {
    const result = await api.listHandoffs({ ...params, limit, cursor });
    items.push(...result.items);
    cursor = result.next_cursor;
    if (!cursor) return { items, complete: true };
  }
  return { items, complete: false };
}
