// The top bar: brand, the role's navigation, the live pill, the unread bell
// and the notifications opt-in (seniors and admins), who is signed in and "Sign out".

import { notifyToggle } from "./notify.js";
import { isUnread } from "./queue-cards.js";
import { isClaimingRole } from "./relevance.js";
import { APP_NAME, logo } from "./signin.js";
import { fill, h, svg } from "./ui.js";

/** Seniors and admins get the queue, the bell and notifications. */
export const isSeniorRole = isClaimingRole;

const NAV = {
  engineer: [["mine", "My escalations"], ["escalate", "Escalate"]],
  senior: [["queue", "Queue"]],
  admin: [["queue", "Queue"], ["routing", "Routing"], ["analytics", "Analytics"], ["webhooks", "Webhooks"], ["api-keys", "API keys"], ["audit", "Audit"]],
};

function bell() {
  return h("a", { class: "notif", id: "notif", href: "#/queue" },
    svg("svg", { viewBox: "0 0 24 24", width: 20, height: 20, "aria-hidden": "true", class: "bell" },
      svg("path", { d: "M6 16V11a6 6 0 1 1 12 0v5l1.5 2h-15z" }), svg("path", { d: "M10 20a2 2 0 0 0 4 0" })),
    h("span", { class: "notif-count", id: "notif-count" }));
}

/** Build the bar for ``session`` into ``topbar``; ``signOut()`` is the button's action. */
export function renderHeader(topbar, session, signOut) {
  const { claims } = session;
  const nav = h("nav", { class: "nav", "aria-label": "Main" },
    (NAV[claims.role] || NAV.engineer).map(([route, label]) => h("a", { href: `#/${route}`, dataset: { route } }, label)));
  const right = h("div", { class: "topbar-right" },
    h("span", { class: "live-pill", id: "live-pill" }),
    session.notifier ? notifyToggle(session.notifier) : null,
    isSeniorRole(claims.role) ? bell() : null,
    h("span", { class: "user" }, h("span", { class: "user-name" }, claims.name || claims.sub), h("span", { class: "user-role" }, claims.role)),
    h("button", { type: "button", class: "btn btn-ghost btn-small", onclick: () => signOut() }, "Sign out"),
  );
  fill(topbar, h("div", { class: "topbar-inner" },
    h("a", { class: "brand", href: "#/" }, logo(), h("span", {}, APP_NAME)),
    nav,
    right,
  ));
  topbar.hidden = false;
  renderLive(session);
  renderCount(session);
}

/** Mark the nav link of the current route. */
export function markRoute(topbar, name) {
  for (const link of topbar.querySelectorAll("nav a")) {
    if (link.dataset.route === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

export function renderLive(session) {
  const pill = document.getElementById("live-pill");
  if (!pill || !session) return;
  const state = session.stream.state;
  pill.dataset.state = state;
  pill.textContent = state === "live" ? "Live" : state === "reconnecting" ? "Reconnecting…" : "Connecting…";
  pill.title = state === "live" ? "Receiving events as they happen" : "Trying to reach the event stream";
}

export function renderCount(session) {
  const link = document.getElementById("notif");
  if (!link || !session?.queue) return;
  const unread = session.queue.pending().filter((x) => isUnread(x, session.seen)).length;
  const count = document.getElementById("notif-count");
  count.textContent = unread ? String(unread) : "";
  count.hidden = unread === 0;
  link.setAttribute("aria-label", unread ? `${unread} new escalation${unread === 1 ? "" : "s"} in the queue` : "No new escalations");
  link.classList.toggle("has-unread", unread > 0);
}
