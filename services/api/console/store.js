// Client state for seniors and admins: the open handoffs (pending and claimed),
// kept current by the event stream, the ones whose level targets this user
// ("For me"), and the set of handoffs this user has seen; and how a view keeps
// a full handoff current from events.
//
// An event carries a slim handoff (docs/events.md): everything a queue card or
// a notification shows, without the transcript, tried steps (counted instead),
// notes and AI assessment. The queue renders from it as it is; a view that
// shows more fetches the full handoff (HandoffFollower).

import { allTeams, api, listAll } from "./api.js";
import { EventType, HandoffStatus, OPEN_STATUSES, PRIORITIES } from "./enums.js";
import { inForMeQueue } from "./relevance.js";

const OPEN = new Set(OPEN_STATUSES);

export function queueOrder(a, b) {
  const rank = PRIORITIES.indexOf(a.priority) - PRIORITIES.indexOf(b.priority);
  if (rank) return rank;
  const age = Date.parse(a.created_at) - Date.parse(b.created_at);
  if (age) return age;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** True when ``incoming`` is not older than ``current`` (events and fetches may cross). */
export function isNewer(incoming, current) {
  return !current || Date.parse(incoming.updated_at) >= Date.parse(current.updated_at);
}

export class QueueModel extends EventTarget {
  constructor() {
    super();
    this.items = new Map();
    this.loaded = false;
    this.complete = true;
    this.refreshing = null;
    this.again = false;
    this.during = [];
  }

  /** Refetch every open handoff. Calls made while one runs coalesce into one more. */
  refresh() {
    if (this.refreshing) {
      this.again = true;
      return this.refreshing;
    }
    this.refreshing = this.fetchOpen().finally(() => {
      this.refreshing = null;
      if (this.again) {
        this.again = false;
        this.refresh();
      }
    });
    return this.refreshing;
  }

  async fetchOpen() {
    this.during = [];
    const [pending, claimed] = await Promise.all([
      listAll({ status: HandoffStatus.pending }),
      listAll({ status: HandoffStatus.claimed }),
    ]);
    const items = new Map();
    for (const handoff of [...pending.items, ...claimed.items]) items.set(handoff.id, handoff);
    // Events that arrived while we fetched may be newer than what the fetch saw.
    for (const handoff of this.during) {
      if (isNewer(handoff, items.get(handoff.id))) {
        if (OPEN.has(handoff.status)) items.set(handoff.id, handoff);
        else items.delete(handoff.id);
      }
    }
    this.items = items;
    this.complete = pending.complete && claimed.complete;
    this.loaded = true;
    this.changed();
  }

  /** Apply one event's handoff; returns true when it changed the open set. */
  apply(handoff) {
    if (this.refreshing) this.during.push(handoff);
    const current = this.items.get(handoff.id);
    if (!isNewer(handoff, current)) return false;
    if (OPEN.has(handoff.status)) this.items.set(handoff.id, handoff);
    else if (current) this.items.delete(handoff.id);
    else return false;
    this.changed();
    return true;
  }

  pending() {
    return [...this.items.values()].filter((x) => x.status === HandoffStatus.pending).sort(queueOrder);
  }

  claimed() {
    return [...this.items.values()]
      .filter((x) => x.status === HandoffStatus.claimed)
      .sort((a, b) => Date.parse(b.claimed_at) - Date.parse(a.claimed_at));
  }

  changed() {
    this.dispatchEvent(new Event("change"));
  }
}

/** How long the set of teams with members is reused across refreshes. */
const STAFFED_TEAMS_TTL_MS = 5 * 60 * 1000;

/**
 * The waiting handoffs whose current level targets this user: fetched with
 * ``GET /handoffs?for=me`` (with ``GET /me`` for the user's teams and ``GET
 * /teams?members=false`` for which teams have members), then kept current from
 * the stream by the same rule (relevance.js ``inForMeQueue``), so a level change that
 * reaches this user shows without a refetch. Which teams have members is fetched
 * at most every five minutes (summaries, not member lists: those were megabytes
 * in a big org); the server's ``for=me`` answer at each refresh is current.
 */
export class ForMeSet extends EventTarget {
  constructor() {
    super();
    this.me = null;
    this.ids = new Set();
    this.loaded = false;
    this.during = null;
    this.staffed = null;
    this.staffedAt = 0;
  }

  async staffedTeams() {
    if (this.staffed && Date.now() - this.staffedAt < STAFFED_TEAMS_TTL_MS) return this.staffed;
    try {
      const teams = await allTeams({ members: false });
      this.staffed = new Set(teams.items.filter((team) => team.member_count > 0).map((team) => team.id));
      this.staffedAt = Date.now();
    } catch {
      // unknown: only the user's own teams count (an older answer is kept)
    }
    return this.staffed;
  }

  async refresh() {
    this.during = [];
    const [me, staffed, page] = await Promise.all([
      api.me(),
      this.staffedTeams(),
      listAll({ status: HandoffStatus.pending, for: "me" }),
    ]);
    this.me = { ...me, staffedTeams: staffed };
    this.ids = new Set(page.items.map((x) => x.id));
    const during = this.during;
    this.during = null;
    for (const handoff of during) this.decide(handoff);
    this.loaded = true;
    this.dispatchEvent(new Event("change"));
  }

  /** Apply one event's handoff; returns true when it changed the set. */
  apply(handoff) {
    if (this.during) this.during.push(handoff);
    if (!this.me || !this.decide(handoff)) return false;
    this.dispatchEvent(new Event("change"));
    return true;
  }

  decide(handoff) {
    const wanted = inForMeQueue(handoff, this.me);
    if (wanted === this.ids.has(handoff.id)) return false;
    if (wanted) this.ids.add(handoff.id);
    else this.ids.delete(handoff.id);
    return true;
  }

  has(id) {
    return this.ids.has(id);
  }
}

const SEEN_LIMIT = 2000;

/**
 * Handoffs this user has opened or claimed, in localStorage (per org and user),
 * so unread dots survive a reload. The first time, everything already in the
 * queue counts as seen: only what arrives afterwards is new.
 */
export class SeenSet extends EventTarget {
  constructor(claims) {
    super();
    this.key = `escalations.seen.v1:${claims.org}:${claims.sub}`;
    this.ids = null;
    try {
      const stored = JSON.parse(localStorage.getItem(this.key) || "null");
      if (stored && Array.isArray(stored.ids)) this.ids = new Set(stored.ids);
    } catch {
      this.ids = null;
    }
  }

  get initialized() {
    return this.ids !== null;
  }

  seed(ids) {
    if (this.ids === null) {
      this.ids = new Set(ids);
      this.save();
    }
  }

  has(id) {
    return this.ids !== null && this.ids.has(id);
  }

  add(id) {
    if (this.ids === null) this.ids = new Set();
    if (this.ids.has(id)) return;
    this.ids.add(id);
    this.save();
    this.dispatchEvent(new Event("change"));
  }

  save() {
    const ids = [...this.ids].slice(-SEEN_LIMIT);
    this.ids = new Set(ids);
    try {
      localStorage.setItem(this.key, JSON.stringify({ ids }));
    } catch {
      // Storage full or disabled: dots just won't survive a reload.
    }
  }
}

/** Event types that change what only the full handoff holds: the AI assessment, the resolution notes. */
export const FULL_CHANGES = new Set([EventType.assessment_ready, EventType.assessment_failed, EventType.resolved]);

/** ``current`` (a full handoff, or none) brought up to an event's slim handoff:
 * what the event carries replaces what ``current`` had; the rest is kept. */
export function mergeSlim(current, slim) {
  if (!current) return slim;
  return { ...current, ...slim, snapshot: { ...current.snapshot, ...slim.snapshot } };
}

/**
 * Keeps full handoffs current from their events: ``apply(handoff)`` gets the
 * event's slim handoff merged into the one in hand, or, for an event of one of
 * ``fetchOn``'s types, the full handoff from ``GET /handoffs/{id}``. One fetch
 * per handoff at a time; an event that arrives meanwhile fetches once more
 * after it, so the last answer applied is never older than the last event.
 * ``apply`` must ignore a handoff older than the one it shows (``isNewer``).
 */
export class HandoffFollower {
  constructor(apply, fetchOn = FULL_CHANGES) {
    this.apply = apply;
    this.fetchOn = fetchOn;
    this.fetching = new Map(); // handoff id -> { again }
  }

  /** One event (its type and slim handoff) about the handoff ``current`` shows. */
  follow(type, slim, current) {
    const running = this.fetching.get(slim.id);
    if (running) running.again = true;
    if (this.fetchOn.has(type)) this.fetch(slim.id);
    else this.apply(mergeSlim(current, slim));
  }

  fetch(id) {
    if (this.fetching.has(id)) return;
    const state = { again: false };
    this.fetching.set(id, state);
    api.getHandoff(id)
      .then((full) => this.apply(full), () => {}) // unreachable or gone: the next resync reloads
      .finally(() => {
        this.fetching.delete(id);
        if (state.again) this.fetch(id);
      });
  }
}
