// Browser notifications for seniors and admins: opted into with a click in the
// top bar (the permission prompt never shows on load), the choice kept in
// localStorage per org and user. While the tab is hidden, a handoff that
// arrives, escalates to this user or is assigned to them (relevance.js
// ``concern``) shows a system notification; clicking it focuses the window and opens
// the handoff. The event's SSE id is the notification's ``tag``, so a replayed
// event replaces its notification instead of adding another.

import { concern } from "./relevance.js";
import { levelLabel, targetName } from "./routing.js";
import { h } from "./ui.js";

const supported = () => typeof window.Notification === "function";

export class BrowserNotifier extends EventTarget {
  constructor(claims) {
    super();
    this.claims = claims;
    this.key = `escalations.notify.v1:${claims.org}:${claims.sub}`;
  }

  get supported() {
    return supported();
  }

  get permission() {
    return supported() ? window.Notification.permission : "unsupported";
  }

  /** Opted in here and allowed by the browser. */
  get on() {
    return this.permission === "granted" && localStorage.getItem(this.key) === "on";
  }

  /** Ask for the permission (call from a click only) and remember the choice. */
  async enable() {
    const permission = this.permission === "granted" ? "granted" : await window.Notification.requestPermission();
    if (permission === "granted") this.store("on");
    this.changed();
    return permission;
  }

  disable() {
    this.store("off");
    this.changed();
  }

  store(value) {
    try {
      localStorage.setItem(this.key, value);
    } catch {
      // Storage disabled: the choice is not remembered.
    }
  }

  changed() {
    this.dispatchEvent(new Event("change"));
  }

  /**
   * One stream event (``{type, data, id}``); ``me`` is ``GET /me`` as the "For
   * me" set holds it (relevance.js). Shows a notification when it concerns this
   * user, the tab is hidden and notifications are on; returns it (or null).
   */
  consider({ type, data, id }, me) {
    if (!this.on || !document.hidden || !data.handoff) return null;
    const text = describe(concern(type, data.handoff, me), data.handoff);
    if (!text) return null;
    return this.show(text, data.handoff.id, id);
  }

  show({ title, body }, handoffId, eventId) {
    const options = { body, tag: eventId ? `event-${eventId}` : `handoff-${handoffId}` };
    let notification;
    try {
      notification = new window.Notification(title, options);
    } catch {
      return null; // e.g. a browser that only allows notifications from a service worker
    }
    notification.onclick = () => {
      window.focus();
      location.hash = `#/handoff/${encodeURIComponent(handoffId)}`;
      notification.close();
    };
    return notification;
  }
}

/** The notification's ``{title, body}`` for an event's handoff that concerns this
 * user for ``reason`` (relevance.js ``concern``), or null when ``reason`` is null. */
export function describe(reason, handoff) {
  const summary = handoff.snapshot.problem_summary;
  if (reason === "arrived") {
    return { title: `New ${handoff.priority} escalation`, body: `${handoff.snapshot.problem_domain}: ${summary}` };
  }
  if (reason === "escalated") {
    const level = levelLabel(handoff.escalation_level, handoff.escalation_loop);
    return { title: `Escalated to you: ${level}`, body: `${summary} (${targetName(handoff.escalation_target)})` };
  }
  if (reason === "assigned") return { title: "Assigned to you", body: summary };
  return null;
}

const LABELS = {
  on: ["Notifications on", "Desktop notifications are on while this tab is in the background. Click to turn them off."],
  off: ["Notify me", "Get a desktop notification while this tab is in the background."],
  denied: ["Notifications blocked", "The browser blocks notifications for this site; allow them in its site settings."],
};

/** The top bar's opt-in button (null where the browser has no notifications). */
export function notifyToggle(notifier) {
  if (!notifier.supported) return null;
  const button = h("button", { type: "button", class: "btn btn-ghost btn-small notify-toggle", id: "notify-toggle" });
  const render = () => {
    const state = notifier.on ? "on" : notifier.permission === "denied" ? "denied" : "off";
    const [label, title] = LABELS[state];
    button.textContent = label;
    button.title = title;
    button.dataset.state = state;
    button.setAttribute("aria-pressed", String(state === "on"));
  };
  button.addEventListener("click", async () => {
    if (notifier.on) notifier.disable();
    else await notifier.enable();
  });
  notifier.addEventListener("change", render);
  render();
  return button;
}
