// What the console would otherwise copy from Python by hand, served by the API
// at console/config.json (services/api/routes/console.py): the event types the
// stream listens for (shared.events.models.EventType) and the demo users
// (shared.auth.demo_users), the latter only when demo sign-in is on.

let loading = null;

/** ``{event_types: [str], demo: {enabled, users: [{role, id, name}]}}``, fetched once. */
export function loadConfig() {
  if (!loading) {
    loading = fetch("console/config.json", { headers: { Accept: "application/json" }, cache: "no-store" })
      .then((response) => {
        if (!response.ok) throw new Error(`The console's configuration did not load (HTTP ${response.status}).`);
        return response.json();
      })
      .catch((error) => {
        loading = null; // try again next time
        throw error;
      });
  }
  return loading;
}
