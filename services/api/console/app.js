// The console's entry point: the session (sign-in, sign-out, expiry), the hash
// router, and the live plumbing every view shares (stream → queue model, "For
// me" set, presence, unread count, the "(N)" title while hidden, screen-reader
// announcements, browser notifications). The views live in their own modules.

import { mountAnalytics } from "./analytics.js";
import { mountApiKeys } from "./api-keys-page.js";
import { mountAudit } from "./audit-page.js";
import {
  api, clearToken, getToken, isSsoToken, onUnauthorized, readClaims, setToken, ssoSessionToken, ssoSignOut,
} from "./api.js";
import { loadConfig } from "./config.js";
import { EVENT_TYPES } from "./enums.js";
import { mountEscalate } from "./escalate.js";
import { mountHandoff } from "./handoff.js";
import { isSeniorRole, markRoute, renderCount, renderHeader, renderLive } from "./header.js";
import { mountMine } from "./mine.js";
import { BrowserNotifier } from "./notify.js";
import { PresenceModel } from "./presence.js";
import { mountQueue } from "./queue.js";
import { concern } from "./relevance.js";
import { levelLabel, targetName } from "./routing.js";
import { mountRouting } from "./routing-page.js";
import { APP_NAME, showSignIn, signInProblem } from "./signin.js";
import { mountSlackLink } from "./slack-link.js";
import { ForMeSet, QueueModel, SeenSet } from "./store.js";
import { EventStream } from "./stream.js";
import { mountWebhooks } from "./webhooks-page.js";
import { announce, errorMessage, startTimeTicker } from "./ui.js";

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
  setToken(token);
  const stream = new EventStream(EVENT_TYPES);
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
  if (isSsoToken()) scheduleRenewal(session);
  else if (claims.exp) {
    const ms = claims.exp * 1000 - Date.now();
    if (ms < 2 ** 31) session.expiry = setTimeout(() => signOut("Your session expired. Sign in again."), Math.max(0, ms));
  }
  renderHeader(topbar, session, signOut);
  window.addEventListener("hashchange", route);
  route();
}

// A token from a sign-in at the identity provider is short-lived: renew it from
// the session cookie (auth/session) when three quarters of it have passed. The
// stream renews its cookie with the new token when the old one ends it.
function scheduleRenewal(s) {
  const left = s.claims.exp * 1000 - Date.now();
  clearTimeout(s.expiry);
  s.expiry = setTimeout(() => renew(s), Math.max(1000, left * 0.75));
}

async function renew(s) {
  if (session !== s) return;
  try {
    const issued = await ssoSessionToken();
    s.token = issued.token;
    s.claims = readClaims(issued.token) || s.claims;
    scheduleRenewal(s);
  } catch (error) {
    if (session !== s) return;
    if (error.status === 401 || error.status === 403) {
      signOut(error.code === "no_role" ? signInProblem("no_role") : "Your session ended. Sign in again.");
      return;
    }
    const left = s.claims.exp * 1000 - Date.now();
    if (left <= 0) signOut("Your session expired. Sign in again.");
    else s.expiry = setTimeout(() => renew(s), Math.min(15000, Math.max(1000, left / 2)));
  }
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
  const sso = isSsoToken();
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
  if (sso && (await endProviderSession(!message))) return;
  signInPage(message);
}

/** Ends the console session begun at the provider; with ``leave``, goes on to the
provider's own sign-out page when it has one (true: the page is leaving). */
async function endProviderSession(leave) {
  try {
    const { end_session_url: url } = await ssoSignOut();
    if (leave && url) {
      location.assign(url);
      return true;
    }
  } catch {
    // Best effort: the session cookie is cleared by the server, or expires.
  }
  return false;
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
  const reason = concern(type, handoff, session.forMe.me);
  if (reason === "arrived" || reason === "assigned") countHidden();
  if (reason) announce(announcement(reason, handoff));
}

function announcement(reason, handoff) {
  const summary = handoff.snapshot.problem_summary;
  if (reason === "arrived") return `New ${handoff.priority} escalation in ${handoff.snapshot.problem_domain}: ${summary}`;
  if (reason === "escalated") return `${summary}: now ${levelLabel(handoff.escalation_level, handoff.escalation_loop)}, ${targetName(handoff.escalation_target)}.`;
  return `Assigned to you: ${summary}`;
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
  "api-keys": (ctx) => ctx.claims.role === "admin" && mountApiKeys(main),
  audit: (ctx) => ctx.claims.role === "admin" && mountAudit(main),
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

/** ``#/signed-out?error=code``: where a failed sign-in at the provider comes back to. */
function signInError() {
  const [path, search] = location.hash.replace(/^#\/?/, "").split("?");
  if (path !== "signed-out") return null;
  history.replaceState(null, "", location.pathname + location.search);
  return signInProblem(new URLSearchParams(search || "").get("error"));
}

/** Signs in with the session cookie of a sign-in at the provider, if there is one. */
async function resumeSso() {
  let config;
  try {
    config = await loadConfig();
  } catch {
    return false;
  }
  if (!config.sso || !config.sso.enabled) return false;
  try {
    const issued = await ssoSessionToken();
    await start(issued.token);
    return true;
  } catch (error) {
    clearToken();
    if (error.status === 401) return false; // no session: the sign-in page
    await signInPage(error.code === "no_role" ? signInProblem("no_role") : errorMessage(error));
    return true;
  }
}

async function boot() {
  const problem = signInError();
  if (problem) {
    await signInPage(problem);
    return;
  }
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
  if (await resumeSso()) return;
  await signInPage();
}

startTimeTicker();
boot();
