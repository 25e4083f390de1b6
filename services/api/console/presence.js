// Who of the org is online (GET presence): seniors and admins with an open
// event stream on any replica, or a recent heartbeat. This console's own stream
// already counts, so it sends no heartbeat. Refetched every 15 s, when the tab
// gains focus or becomes visible, and whenever the stream is (again) live —
// so the first list already includes this user's own stream.
//
// Dispatches "change" when the list changed.

import { api } from "./api.js";

const REFRESH_MS = 15000;

export class PresenceModel extends EventTarget {
  constructor(stream) {
    super();
    this.stream = stream;
    this.items = [];
    this.loaded = false;
    this.failed = false;
    this.timer = null;
    this.refresh = this.refresh.bind(this);
    this.onVisible = () => {
      if (!document.hidden) this.refresh();
    };
    this.onState = ({ detail }) => {
      if (detail === "live") this.refresh();
    };
  }

  start() {
    this.timer = setInterval(this.refresh, REFRESH_MS);
    window.addEventListener("focus", this.refresh);
    document.addEventListener("visibilitychange", this.onVisible);
    this.stream.addEventListener("state", this.onState);
    return this.refresh();
  }

  stop() {
    clearInterval(this.timer);
    window.removeEventListener("focus", this.refresh);
    document.removeEventListener("visibilitychange", this.onVisible);
    this.stream.removeEventListener("state", this.onState);
  }

  async refresh() {
    try {
      const { items } = await api.presence();
      const changed = !this.loaded || this.failed || JSON.stringify(items) !== JSON.stringify(this.items);
      this.items = items;
      this.loaded = true;
      this.failed = false;
      if (changed) this.dispatchEvent(new Event("change"));
    } catch {
      // Unreachable or 503 (presence_unavailable): keep the last list, say it may be stale.
      if (!this.failed) {
        this.failed = true;
        this.dispatchEvent(new Event("change"));
      }
    }
  }

  has(userId) {
    return this.items.some((person) => person.id === userId);
  }
}
