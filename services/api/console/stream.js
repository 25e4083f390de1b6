// The org's live events over EventSource. Authentication is the HttpOnly
// cookie from POST events/session (scoped to the stream's path), so no token
// ever appears in a URL. EventSource reconnects by itself with Last-Event-ID;
// when the server refuses a reconnect (the cookie expired, a 503), we renew
// the cookie and open a new stream from the last id we saw. The server ends a
// stream with a "session_expired" event ({"reason": "expired" | "revoked"}) when
// the cookie's token expires (it lives no longer than the bearer token) or the
// session was signed out: we renew the cookie with the bearer the same way, and
// a refused bearer signs the user out (app.js).
//
// The event types to listen for are Python's EventType (enums.js, generated), so
// a new type reaches every view without a hand edit.
//
// Dispatches: "event" (detail: {type, data, id}, id being the SSE id), "resync" (refetch what you show:
// a reconnect or a reset), "state" (detail: "connecting" | "live" | "reconnecting").

import { api } from "./api.js";

const RETRY_MS = [1000, 2000, 5000, 10000, 30000];

export class EventStream extends EventTarget {
  /** ``eventTypes``: the ``event:`` names to dispatch as "event" (enums.js ``EVENT_TYPES``). */
  constructor(eventTypes) {
    super();
    this.eventTypes = eventTypes;
    this.source = null;
    this.lastId = null;
    this.readyOnce = false;
    this.retries = 0;
    this.timer = null;
    this.state = "connecting";
    this.stopped = false;
  }

  async start() {
    await api.openStreamSession();
    this.open();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.source) this.source.close();
    this.source = null;
  }

  open() {
    if (this.stopped) return;
    const url = this.lastId === null ? "api/v1/events" : `api/v1/events?last_event_id=${encodeURIComponent(this.lastId)}`;
    const source = new EventSource(url);
    this.source = source;
    for (const type of this.eventTypes) {
      source.addEventListener(type, (message) => this.onEvent(type, message));
    }
    source.addEventListener("ready", (message) => this.onReady(message));
    source.addEventListener("reset", (message) => {
      this.track(message);
      this.emit("resync", "reset");
    });
    source.addEventListener("session_expired", (message) => this.onSessionEnd(source, message));
    source.addEventListener("error", () => this.onError(source));
  }

  onEvent(type, message) {
    this.track(message);
    let data;
    try {
      data = JSON.parse(message.data);
    } catch {
      return;
    }
    this.emit("event", { type, data, id: message.lastEventId || null });
  }

  onReady(message) {
    this.track(message);
    this.retries = 0;
    this.setState("live");
    if (this.readyOnce) this.emit("resync", "reconnect");
    this.readyOnce = true;
  }

  onError(source) {
    if (this.stopped || source !== this.source) return;
    this.setState("reconnecting");
    if (source.readyState !== EventSource.CLOSED) return; // the browser is retrying by itself
    this.scheduleRenew();
  }

  onSessionEnd(source, message) {
    if (this.stopped || source !== this.source) return;
    this.track(message);
    source.close(); // no automatic reconnect with a cookie the server no longer takes
    this.setState("reconnecting");
    this.scheduleRenew();
  }

  scheduleRenew() {
    const delay = RETRY_MS[Math.min(this.retries, RETRY_MS.length - 1)];
    this.retries += 1;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.renew(), delay);
  }

  async renew() {
    if (this.stopped) return;
    try {
      await api.openStreamSession(); // a 401 here signs the user out (see app.js)
    } catch (error) {
      if (error && error.status === 401) return;
      this.onError(this.source); // still unreachable: back off and try again
      return;
    }
    this.open();
  }

  track(message) {
    if (message.lastEventId) this.lastId = message.lastEventId;
  }

  setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.emit("state", state);
  }

  emit(name, detail) {
    this.dispatchEvent(new CustomEvent(name, { detail }));
  }
}
