// Live events over the websocket at /ws (docs/queue.md): one connection for the whole console,
// subscribed to our queue; views listen by event name. A dropped socket reconnects with backoff and
// tells the views to reload what they show (events sent meanwhile are lost, as with events_missed).
import { QUEUE_ID, accessToken } from "./api";

export type EventData = Record<string, unknown>;
type Listener = (data: EventData) => void;

const listeners = new Map<string, Set<Listener>>();
let socket: WebSocket | null = null;
let delay = 250;
const connectedListeners = new Set<(connected: boolean) => void>();

function dispatch(name: string, data: EventData): void {
  for (const listener of listeners.get(name) ?? []) listener(data);
  for (const listener of listeners.get("*") ?? []) listener({ ...data, event: name });
}

function connect(): void {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  // A browser cannot set a header on the handshake: the token rides as a subprotocol beside ours, which the
  // server takes out before the route sees it (invoke_host/security/access_token.py).
  const token = accessToken();
  const protocols = token === null ? ["invoke-host.events"] : ["invoke-host.events", `invoke-host.bearer.${token}`];
  const ws = new WebSocket(`${scheme}://${location.host}/ws`, protocols);
  socket = ws;
  ws.onopen = () => {
    delay = 250;
    ws.send(JSON.stringify({ subscribe: "queue", queue_id: QUEUE_ID }));
  };
  ws.onmessage = (message: MessageEvent<string>) => {
    const parsed = JSON.parse(message.data) as unknown;
    for (const frame of Array.isArray(parsed) ? parsed : [parsed]) {
      const { event, data } = frame as { event: string; data: EventData };
      if (event === "subscribed") {
        for (const listener of connectedListeners) listener(true);
        // A fresh subscription: whatever happened while we were away is unknown, like events_missed.
        dispatch("events_missed", { reason: "reconnected" });
      } else {
        dispatch(event, data);
      }
    }
  };
  ws.onclose = () => {
    for (const listener of connectedListeners) listener(false);
    socket = null;
    setTimeout(connect, delay);
    delay = Math.min(delay * 2, 5000);
  };
}

/** Listen to one event name ("*" for all); returns the function that stops listening. */
export function onEvent(name: string, listener: Listener): () => void {
  if (socket === null) connect();
  let set = listeners.get(name);
  if (!set) listeners.set(name, (set = new Set()));
  set.add(listener);
  return () => set.delete(listener);
}

export function onConnection(listener: (connected: boolean) => void): () => void {
  if (socket === null) connect();
  connectedListeners.add(listener);
  return () => connectedListeners.delete(listener);
}
