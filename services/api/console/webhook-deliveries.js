// One webhook's delivery log, newest first: status, attempts, the last answer
// or error, the next try and when it was delivered; "Load more" follows
// ``next_cursor``; a delivered or failed delivery can be sent again. While a
// shown delivery is still pending, the first page is fetched again every few
// seconds and merged over the rows shown (deliveries have no stream events).

import { api } from "./api.js";
import { absoluteTime, errorMessage, fill, h } from "./ui.js";

const PAGE = 20;
const POLL_MS = 2000;
const STATUS_LABEL = { pending: "Pending", delivered: "Delivered", failed: "Failed" };

const when = (iso) => (iso ? h("time", { datetime: iso }, absoluteTime(iso)) : "—");

function row(delivery, onRedeliver) {
  const error = h("p", { class: "field-error", hidden: true });
  const again = delivery.status === "pending" ? null : h("button", { type: "button", class: "btn btn-ghost btn-small" }, "Redeliver");
  again?.addEventListener("click", async () => {
    again.disabled = true;
    error.hidden = true;
    try {
      await onRedeliver(delivery);
    } catch (e) {
      again.disabled = false;
      error.textContent = errorMessage(e);
      error.hidden = false;
    }
  });
  return h("tr", { dataset: { id: delivery.id, status: delivery.status } },
    h("td", {}, h("code", {}, delivery.event_type), h("br"), h("span", { class: "muted small" }, when(delivery.created_at))),
    h("td", {}, h("span", { class: `badge delivery-${delivery.status}` }, STATUS_LABEL[delivery.status] || delivery.status)),
    h("td", { class: "num" }, String(delivery.attempts)),
    h("td", { class: "num" }, delivery.last_status_code === null ? "—" : String(delivery.last_status_code)),
    h("td", { class: "wrap" }, delivery.last_error || "—"),
    h("td", {}, delivery.paused_until
      ? [when(delivery.paused_until), h("br"), h("span", { class: "muted small" }, "receiver paused")]
      : when(delivery.next_attempt_at)),
    h("td", {}, when(delivery.delivered_at)),
    h("td", {}, again, error));
}

/** The log of ``webhook``; call ``reload()`` after sending a test, ``dispose()`` when gone. */
export function deliveryLog(webhook) {
  let items = [];
  let cursor = null;
  let timer = null;
  let disposed = false;
  const body = h("tbody");
  const status = h("p", { class: "muted small", role: "status" }, "Loading deliveries…");
  const more = h("button", { type: "button", class: "btn btn-ghost btn-small", hidden: true }, "Load more");
  const refresh = h("button", { type: "button", class: "btn btn-ghost btn-small" }, "Refresh");
  const table = h("table", { class: "table delivery-log", "aria-label": `Deliveries to ${webhook.url}` },
    h("thead", {}, h("tr", {}, ["Event", "Status", "Attempts", "Last code", "Last error", "Next attempt", "Delivered", ""].map((t) => h("th", { scope: "col" }, t)))),
    body);

  async function redeliver(delivery) {
    await api.redeliver(webhook.id, delivery.id);
    await reload();
  }

  function render() {
    fill(body, items.map((d) => row(d, redeliver)));
    table.hidden = items.length === 0;
    status.textContent = items.length ? "" : "No deliveries yet.";
    more.hidden = !cursor;
    clearTimeout(timer);
    if (!disposed && items.some((d) => d.status === "pending")) timer = setTimeout(refreshHead, POLL_MS);
  }

  async function fetchPage(after) {
    try {
      const page = await api.deliveries(webhook.id, { limit: PAGE, cursor: after });
      items = after ? [...items, ...page.items] : page.items;
      cursor = page.next_cursor;
      if (!disposed) render();
    } catch (error) {
      if (error.status !== 401 && !disposed) status.textContent = errorMessage(error);
    }
  }

  function reload() {
    return fetchPage(null);
  }

  /** The first page again, merged over what is shown, so pages loaded with "Load more" stay. */
  async function refreshHead() {
    if (!cursor) return reload();
    try {
      const page = await api.deliveries(webhook.id, { limit: PAGE });
      const fresh = new Set(page.items.map((d) => d.id));
      items = [...page.items, ...items.filter((d) => !fresh.has(d.id))];
      if (!disposed) render();
    } catch (error) {
      if (error.status !== 401 && !disposed) status.textContent = errorMessage(error);
    }
  }

  more.addEventListener("click", () => fetchPage(cursor));
  refresh.addEventListener("click", reload);
  const el = h("div", { class: "delivery-panel", id: `deliveries-${webhook.id}` },
    h("div", { class: "section-head" }, h("h4", {}, "Delivery log"), refresh),
    status, h("div", { class: "table-wrap" }, table), more);
  table.hidden = true;
  reload();
  return {
    el,
    reload,
    dispose() {
      disposed = true;
      clearTimeout(timer);
    },
  };
}
