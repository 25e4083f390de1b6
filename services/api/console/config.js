// What depends on the server's settings, served by the API at console/config.json
// (services/api/routes/console.py): whether sign-in at the identity provider is
// offered, and the demo users (shared.auth.demo_users) when demo sign-in is on. (It
// lists the event types too; the console takes those, like every Python enum it
// uses, from enums.js.)

let loading = null;

/** ``{event_types: [str], demo: {enabled, users: [{role, id, name}]}, sso: {enabled, display_name}}``, fetched once. */
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
