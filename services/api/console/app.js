// The console's entry point: sign-in, the header, the hash router, and the
// live plumbing every view shares (stream → queue model, unread count, the
// "(N)" title while hidden, screen-reader announcements).

import { mountAnalytics } from "./admin.js";
import { api, clearToken, getToken, onUnauthorized, readClaims, setToken } from "./api.js";
import { mountHandoff } from "./handoff.js";
import { mountEscalate, mountMine } from "./junior.js";
import { isUnread, mountQueue } from "./queue.js";
import { QueueModel, SeenSet } from "./store.js";
import { EventStream } from "./stream.js";
import {
  announce,
  errorMessage,
  fill,
  h,
  svg,
} from "./ui.js";

const APP_NAME = "Escalation Mode";
const main = document.getElementById("main");
const topbar = document.getElementById("topbar");

let session = null;
let view = null;
let viewTitle = "";
let hiddenArrivals = 0;
let signingOut = false;

const isSeniorRole = (role) => role === "senior" || role === "admin";

// --- title ---------------------------------------------------------------------------

function setTitle(title) {
  viewTitle = title;
  updateTitle();
}

function updateTitle() {
  const prefix = hiddenArrivals ? `(${hiddenArrivals}) ` : "";
  document.title = `${prefix}${viewTitle ? `${viewTitle} · ` : ""}${APP_NAME}`;
}

document.addEventListener("visibilitychange", () => {
  if (!document.hidden && hiddenArrivals) {
    hiddenArrivals = 0;
    updateTitle();
  }
});

// --- sign-in -----------------------------------------------------------------------------

function logo() {
  return svg("svg", { class: "logo", viewBox: "0 0 32 32", width: 28, height: 28, "aria-hidden": "true" },
    svg("rect", { width: 32, height: 32, rx: 7, class: "logo-bg" }),
    svg("path", { d: "M9 21l7-10 7 10", class: "logo-mark" }));
}

async function showSignIn(message) {
  topbar.hidden = true;
  setTitle("Sign in");
  const error = h("p", { class: "notice notice-error", role: "alert", hidden: !message }, message || "");
  const textarea = h("textarea", {
    id: "token", rows: 4, spellcheck: "false", autocomplete: "off", "aria-describedby": "token-hint",
    placeholder: "eyJhbGciOiJIUzI1NiIs…",
  });
  const submit = h("button", { type: "submit", class: "btn btn-primary btn-block" }, "Sign in");
  const form = h("form", { class: "signin-form", novalidate: true },
    h("label", { for: "token", class: "label" }, "Access token"),
    h("p", { class: "hint", id: "token-hint" }, "Paste a bearer token (JWT), e.g. from ", h("code", {}, "escalations token"), "."),
    textarea,
    submit,
  );
  const demo = h("section", { class: "demo", hidden: true, "aria-labelledby": "demo-h" });
  const card = h("div", { class: "signin-card" },
    h("div", { class: "signin-brand" }, logo(), h("span", {}, APP_NAME)),
    h("h1", { tabindex: "-1" }, "Sign in to the console"),
    h("p", { class: "muted" }, "Escalate stuck sessions, and pick them up live."),
    error,
    demo,
    form,
  );
  fill(main, h("div", { class: "signin" }, card));

  const fail = (text) => {
    error.textContent = text;
    error.hidden = false;
    error.focus?.();
  };

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const token = textarea.value.trim();
    if (!readClaims(token)) {
      fail("That does not look like a token: expected three base64url parts with sub, role and org claims.");
      textarea.focus();
      return;
    }
    submit.disabled = true;
    try {
      await start(token);
    } catch (e) {
      submit.disabled = false;
      fail(e.status === 401 ? `The server refused this token: ${e.detail || "invalid token"}` : errorMessage(e));
    }
  });

  try {
    const status = await api.demoStatus();
    if (!status.enabled) return;
  } catch {
    return;
  }
  const roles = [
    ["engineer", "Jamie Junior", "Junior engineer: escalate and follow"],
    ["senior", "Sam Senior", "Senior: the live queue, claim, resolve"],
    ["admin", "Alex Admin", "Admin: queue and analytics"],
  ];
  demo.append(
    h("h2", { id: "demo-h" }, "Try the demo"),
    h("div", { class: "demo-buttons" }, roles.map(([role, name, what]) => h("button", {
      type: "button", class: "demo-btn", dataset: { role },
      onclick: async (event) => {
        event.currentTarget.disabled = true;
        try {
          const { token } = await api.demoSignIn(role);
          await start(token);
        } catch (e) {
          event.target.closest("button").disabled = false;
          fail(errorMessage(e));
        }
      },
    }, h("span", { class: "demo-name" }, `Sign in as ${name}`), h("span", { class: "demo-what" }, what)))),
    h("p", { class: "divider" }, h("span", {}, "or use a token")),
  );
  demo.hidden = false;
}

async function start(token) {
  const claims = readClaims(token);
  if (!claims) throw new Error("Unreadable token.");
  setToken(token);
  const stream = new EventStream();
  try {
    await stream.start(); // POST events/session: also proves the server accepts the token
  } catch (error) {
    clearToken();
    throw error;
  }
  signingOut = false;
  session = { token, claims, stream, queue: null, seen: null };
  stream.addEventListener("state", ({ detail }) => {
    document.body.dataset.stream = detail;
    renderLive();
  });
  if (isSeniorRole(claims.role)) await startQueue(session);
  stream.addEventListener("event", onStreamEvent);
  if (claims.exp) {
    const ms = claims.exp * 1000 - Date.now();
    if (ms < 2 ** 31) session.expiry = setTimeout(() => signOut("Your session expired. Sign in again."), Math.max(0, ms));
  }
  renderHeader();
  window.addEventListener("hashchange", route);
  route();
}

async function startQueue(s) {
  s.queue = new QueueModel();
  s.seen = new SeenSet(s.claims);
  s.stream.addEventListener("resync", () => s.queue.refresh());
  s.queue.addEventListener("change", renderCount);
  s.seen.addEventListener("change", renderCount);
  await s.queue.refresh();
  s.seen.seed(s.queue.pending().map((x) => x.id));
  document.body.dataset.queue = "loaded";
}

async function signOut(message) {
  if (signingOut || !session) return;
  signingOut = true;
  const s = session;
  session = null;
  clearTimeout(s.expiry);
  s.stream.stop();
  window.removeEventListener("hashchange", route);
  if (view) view.unmount();
  view = null;
  clearToken();
  delete document.body.dataset.stream;
  delete document.body.dataset.queue;
  try {
    await api.closeStreamSession();
  } catch {
    // Best effort: the cookie expires on its own.
  }
  history.replaceState(null, "", location.pathname + location.search);
  showSignIn(message);
}

// Leaving or reloading the page: close the stream ourselves rather than have it torn down.
window.addEventListener("pagehide", () => session?.stream.stop());

onUnauthorized(() => signOut("Your session expired or the token was refused. Sign in again."));

// --- live plumbing ----------------------------------------------------------------------

function onStreamEvent({ detail }) {
  const { type, data } = detail;
  if (!session || !data.handoff) return;
  session.queue?.apply(data.handoff);
  if (type === "handoff_created" && session.queue) {
    if (document.hidden) {
      hiddenArrivals += 1;
      updateTitle();
    }
    const h0 = data.handoff;
    announce(`New ${h0.priority} escalation in ${h0.snapshot.problem_domain}: ${h0.snapshot.problem_summary}`);
  }
}

// --- header --------------------------------------------------------------------------------

const NAV = {
  engineer: [["mine", "My escalations"], ["escalate", "Escalate"]],
  senior: [["queue", "Queue"]],
  admin: [["queue", "Queue"], ["analytics", "Analytics"]],
};

function renderHeader() {
  const { claims } = session;
  const nav = h("nav", { class: "nav", "aria-label": "Main" },
    (NAV[claims.role] || NAV.engineer).map(([route, label]) => h("a", { href: `#/${route}`, dataset: { route } }, label)));
  const right = h("div", { class: "topbar-right" },
    h("span", { class: "live-pill", id: "live-pill" }),
    isSeniorRole(claims.role)
      ? h("a", { class: "notif", id: "notif", href: "#/queue" },
          svg("svg", { viewBox: "0 0 24 24", width: 20, height: 20, "aria-hidden": "true", class: "bell" },
            svg("path", { d: "M6 16V11a6 6 0 1 1 12 0v5l1.5 2h-15z" }), svg("path", { d: "M10 20a2 2 0 0 0 4 0" })),
          h("span", { class: "notif-count", id: "notif-count" }))
      : null,
    h("span", { class: "user" }, h("span", { class: "user-name" }, claims.name || claims.sub), h("span", { class: "user-role" }, claims.role)),
    h("button", { type: "button", class: "btn btn-ghost btn-small", onclick: () => signOut() }, "Sign out"),
  );
  fill(topbar, h("div", { class: "topbar-inner" },
    h("a", { class: "brand", href: "#/" }, logo(), h("span", {}, APP_NAME)),
    nav,
    right,
  ));
  topbar.hidden = false;
  renderLive();
  renderCount();
}

function renderLive() {
  const pill = document.getElementById("live-pill");
  if (!pill || !session) return;
  const state = session.stream.state;
  pill.dataset.state = state;
  pill.textContent = state === "live" ? "Live" : state === "reconnecting" ? "Reconnecting…" : "Connecting…";
  pill.title = state === "live" ? "Receiving events as they happen" : "Trying to reach the event stream";
}

function renderCount() {
  const link = document.getElementById("notif");
  if (!link || !session?.queue) return;
  const unread = session.queue.pending().filter((x) => isUnread(x, session.seen)).length;
  const count = document.getElementById("notif-count");
  count.textContent = unread ? String(unread) : "";
  count.hidden = unread === 0;
  link.setAttribute("aria-label", unread ? `${unread} new escalation${unread === 1 ? "" : "s"} in the queue` : "No new escalations");
  link.classList.toggle("has-unread", unread > 0);
}

// --- router -------------------------------------------------------------------------------

function defaultRoute(role) {
  return isSeniorRole(role) ? "queue" : "mine";
}

function route() {
  if (!session) return;
  const [path, search] = location.hash.replace(/^#\/?/, "").split("?");
  const [name, arg] = path.split("/");
  const params = new URLSearchParams(search || "");
  const { claims } = session;
  const ctx = { ...session, setTitle, navigate };
  const routes = {
    queue: () => isSeniorRole(claims.role) && mountQueue(main, ctx),
    analytics: () => claims.role === "admin" && mountAnalytics(main, ctx),
    escalate: () => mountEscalate(main, ctx),
    mine: () => mountMine(main, ctx, params),
    handoff: () => arg && mountHandoff(main, ctx, decodeURIComponent(arg)),
  };
  if (view) view.unmount();
  view = null;
  if (name === "handoff" && arg) session.seen?.add(decodeURIComponent(arg));
  const mounted = routes[name] ? routes[name]() : null;
  if (!mounted) {
    location.replace(`#/${defaultRoute(claims.role)}`);
    return;
  }
  view = mounted;
  setTitle(view.title);
  for (const link of topbar.querySelectorAll("nav a")) {
    if (link.dataset.route === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  window.scrollTo(0, 0);
  if (view.focusHeading !== false) main.querySelector("h1")?.focus({ preventScroll: true });
  else main.focus({ preventScroll: true });
}

function navigate(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

// --- boot ----------------------------------------------------------------------------------

async function boot() {
  const token = getToken();
  const claims = token && readClaims(token);
  if (claims && (!claims.exp || claims.exp * 1000 > Date.now())) {
    try {
      await start(token);
      return;
    } catch (error) {
      clearToken();
      await showSignIn(error.status === 401 ? "Your session expired. Sign in again." : errorMessage(error));
      return;
    }
  }
  if (token) clearToken();
  await showSignIn();
}

boot();
