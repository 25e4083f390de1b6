// The console's entry point: the session (sign-in, sign-out, expiry), the hash
// router, and the live plumbing every view shares (stream → queue model, "For
// me" set, presence, unread count, the "(N)" title while hidden, screen-reader
// announcements, browser notifications). The views live in their own modules.

import { mountAnalytics } from "./analytics.js";
import { api, clearToken, getToken, onUnauthorized, readClaims, setToken } from "./api.js";
import { loadConfig } from "./config.js";
import { mountEscalate } from "./escalate.js";
import { mountHandoff } from "./handoff.js";
import { isSeniorRole, markRoute, renderCount, renderHeader, renderLive } from "./header.js";
import { mountMine } from "./mine.js";
import { BrowserNotifier } from "./notify.js";
import { PresenceModel } from "./presence.js";
import { mountQueue } from "./queue.js";
import { isForMe, levelLabel, targetName } from "./routing.js";
import { mountRouting } from "./routing-page.js";
import { APP_NAME, showSignIn } from "./signin.js";
import { mountSlackLink } from "./slack-link.js";
import { ForMeSet, QueueModel, SeenSet } from "./store.js";
import { EventStream } from "./stream.js";
import { mountWebhooks } from "./webhooks-page.js";
import { announce, errorMessage } from "./ui.js";

const main = document.getElementById("main");
const topbar = document.getElementById("topbar");

let session = null;
let view = null;
let viewTitle = "";
let hiddenArrivals = 0;
let signingOut = false;

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

// --- session -------------------------------------------------------------------------------

function signInPage(message) {
  topbar.hidden = true;
  setTitle("Sign in");
  return showSignIn(main, { message, onToken: start });
}

async function start(token) {
  const claims = readClaims(token);
  if (!claims) throw new Error("Unreadable token.");
  const config = await loadConfig();
  setToken(token);
  const stream = new EventStream(config.event_types);
  try {
    await stream.start(); // POST events/session: also proves the server accepts the token
  } catch (error) {
    clearToken();
    throw error;
  }
  signingOut = false;
  session = { token, claims, stream, queue: null, seen: null, forMe: null, presence: null, notifier: null };
  stream.addEventListener("state", ({ detail }) => {
    document.body.dataset.stream = detail;
    renderLive(session);
  });
  if (isSeniorRole(claims.role)) await startSenior(session);
  stream.addEventListener("event", onStreamEvent);
  if (claims.exp) {
    const ms = claims.exp * 1000 - Date.now();
    if (ms < 2 ** 31) session.expiry = setTimeout(() => signOut("Your session expired. Sign in again."), Math.max(0, ms));
  }
  renderHeader(topbar, session, signOut);
  window.addEventListener("hashchange", route);
  route();
}

async function startSenior(s) {
  s.queue = new QueueModel();
  s.seen = new SeenSet(s.claims);
  s.forMe = new ForMeSet();
  s.notifier = new BrowserNotifier(s.claims);
  s.presence = new PresenceModel(s.stream);
  s.stream.addEventListener("resync", () => {
    s.queue.refresh();
    s.forMe.refresh();
  });
  s.queue.addEventListener("change", () => renderCount(session));
  s.seen.addEventListener("change", () => renderCount(session));
  await Promise.all([s.queue.refresh(), s.forMe.refresh()]);
  s.seen.seed(s.queue.pending().map((x) => x.id));
  s.presence.start();
  document.body.dataset.queue = "loaded";
}

async function signOut(message) {
  if (signingOut || !session) return;
  signingOut = true;
  const s = session;
  session = null;
  clearTimeout(s.expiry);
  s.stream.stop();
  s.presence?.stop();
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
  signInPage(message);
}

// Leaving or reloading the page: close the stream ourselves rather than have it torn down.
window.addEventListener("pagehide", () => session?.stream.stop());

onUnauthorized(() => signOut("Your session expired or the token was refused. Sign in again."));

// --- live plumbing ----------------------------------------------------------------------

function onStreamEvent({ detail }) {
  const { type, data } = detail;
  if (!session || !data.handoff) return;
  const handoff = data.handoff;
  session.queue?.apply(handoff);
  session.forMe?.apply(handoff);
  session.notifier?.consider(detail, session.forMe?.me);
  if (!session.queue) return;
  if (type === "handoff_created") {
    countHidden();
    announce(`New ${handoff.priority} escalation in ${handoff.snapshot.problem_domain}: ${handoff.snapshot.problem_summary}`);
  } else if (type === "handoff_escalated" && handoff.status === "pending" && isForMe(handoff, session.forMe.me)) {
    announce(`${handoff.snapshot.problem_summary}: now ${levelLabel(handoff.escalation_level, handoff.escalation_loop)}, ${targetName(handoff.escalation_target)}.`);
  } else if (type === "handoff_assigned" && handoff.assigned_to_id === session.claims.sub) {
    countHidden();
    announce(`Assigned to you: ${handoff.snapshot.problem_summary}`);
  }
}

function countHidden() {
  if (!document.hidden) return;
  hiddenArrivals += 1;
  updateTitle();
}

// --- router -------------------------------------------------------------------------------

function defaultRoute(role) {
  return isSeniorRole(role) ? "queue" : "mine";
}

const ROUTES = {
  queue: (ctx) => isSeniorRole(ctx.claims.role) && mountQueue(main, ctx),
  routing: (ctx) => ctx.claims.role === "admin" && mountRouting(main, ctx),
  analytics: (ctx) => ctx.claims.role === "admin" && mountAnalytics(main, ctx),
  webhooks: (ctx) => ctx.claims.role === "admin" && mountWebhooks(main, ctx),
  escalate: (ctx) => mountEscalate(main, ctx),
  mine: (ctx, arg, params) => mountMine(main, ctx, params),
  handoff: (ctx, arg) => arg && mountHandoff(main, ctx, arg),
  slack: (ctx, arg, params) => arg === "link" && mountSlackLink(main, ctx, params),
};

function route() {
  if (!session) return;
  const [path, search] = location.hash.replace(/^#\/?/, "").split("?");
  const [name, rawArg] = path.split("/");
  const arg = rawArg ? decodeURIComponent(rawArg) : null;
  const ctx = { ...session, setTitle, navigate };
  if (view) view.unmount();
  view = null;
  if (name === "handoff" && arg) session.seen?.add(arg);
  const mounted = ROUTES[name] ? ROUTES[name](ctx, arg, new URLSearchParams(search || "")) : null;
  if (!mounted) {
    location.replace(`#/${defaultRoute(session.claims.role)}`);
    return;
  }
  view = mounted;
  setTitle(view.title);
  markRoute(topbar, name);
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
      await signInPage(error.status === 401 ? "Your session expired. Sign in again." : errorMessage(error));
      return;
    }
  }
  if (token) clearToken();
  await signInPage();
}

boot();
