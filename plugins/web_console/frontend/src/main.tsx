// The console's shell: a header with the views (chosen by the URL fragment, so each has a link and
// the back button works), the live connection state, and the view itself.
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { ApiError, V1, accessToken, errorText, get, onTokenRefused, setAccessToken } from "./api";
import { onConnection } from "./events";
import { Gallery } from "./views/gallery";
import { Models } from "./views/models";
import { Plugins } from "./views/plugins";
import { Queue } from "./views/queue";
import { Run } from "./views/run";

const VIEWS = {
  gallery: { title: "Gallery", key: "g", view: Gallery },
  queue: { title: "Queue", key: "q", view: Queue },
  run: { title: "Run", key: "r", view: Run },
  plugins: { title: "Plugins & nodes", key: "p", view: Plugins },
  models: { title: "Models", key: "m", view: Models },
} as const;
type ViewName = keyof typeof VIEWS;

function current(): ViewName {
  // "#/queue/12" is the queue view with item 12 followed.
  const name = location.hash.replace(/^#\/?/, "").split("/")[0];
  return name in VIEWS ? (name as ViewName) : "gallery";
}

type Access = { state: "checking" } | { state: "ok" } | { state: "token"; message: string | null } | { state: "error"; message: string };

/** Whether this server lets us in: a plain API read answers 401 when it wants a token we lack or have wrong. */
async function checkAccess(): Promise<Access> {
  try {
    await get(`${V1}/plugins`);
    return { state: "ok" };
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      return { state: "token", message: accessToken() === null ? null : `The server refused that token: ${e.detail}` };
    }
    return { state: "error", message: errorText(e) };
  }
}

function App() {
  const [access, setAccess] = useState<Access>({ state: "checking" });
  useEffect(() => {
    void checkAccess().then(setAccess);
    // A token that stops working (the server restarted with another) brings the prompt back.
    return onTokenRefused((detail) => setAccess({ state: "token", message: accessToken() === null ? null : `The server refused the token: ${detail}` }));
  }, []);
  if (access.state === "ok") return <Shell />;
  if (access.state === "checking") return <p class="muted boot">Connecting…</p>;
  if (access.state === "error") return <p class="error boot" role="alert">{access.message}</p>;
  return (
    <TokenPrompt
      message={access.message}
      onToken={(token) => {
        setAccessToken(token);
        setAccess({ state: "checking" });
        void checkAccess().then(setAccess);
      }}
    />
  );
}

function TokenPrompt({ message, onToken }: { message: string | null; onToken: (token: string) => void }) {
  const [token, setToken] = useState("");
  return (
    <form
      class="card token-prompt"
      aria-label="Access token"
      onSubmit={(e) => {
        e.preventDefault();
        if (token.trim()) onToken(token.trim());
      }}
    >
      <h2>This server needs an access token</h2>
      <p class="muted">
        It was started with a token (<code>INVOKE_HOST_TOKEN</code> or <code>--token-file</code>). Paste it here: it is kept in this tab
        only (sessionStorage) until you close the tab or press "Forget token", and sent in a header, never in a URL.
      </p>
      {message && (
        <p class="error" role="alert">
          {message}
        </p>
      )}
      <label>
        token <input type="password" name="token" autocomplete="current-password" value={token} onInput={(e) => setToken(e.currentTarget.value)} />
      </label>
      <button type="submit" class="primary">
        Connect
      </button>
    </form>
  );
}

function forgetToken(): void {
  setAccessToken(null);
  // A fresh page: no socket, image or request made with the old token stays behind.
  location.reload();
}

function Shell() {
  const [view, setView] = useState<ViewName>(current());
  const [connected, setConnected] = useState(false);
  const [version, setVersion] = useState("");
  useEffect(() => {
    const onHash = () => setView(current());
    window.addEventListener("hashchange", onHash);
    // Alt + a view's letter switches views from anywhere.
    const keys = (e: KeyboardEvent) => {
      if (!e.altKey) return;
      const found = Object.entries(VIEWS).find(([, v]) => v.key === e.key);
      if (found) {
        e.preventDefault();
        location.hash = `#/${found[0]}`;
      }
    };
    window.addEventListener("keydown", keys);
    const stop = onConnection(setConnected);
    get<{ version: string }>(`${V1}/app/version`).then((v) => setVersion(v.version), () => setVersion(""));
    return () => {
      window.removeEventListener("hashchange", onHash);
      window.removeEventListener("keydown", keys);
      stop();
    };
  }, []);
  const View = VIEWS[view].view;
  return (
    <>
      <header class="top">
        <strong class="brand">Invoke Host</strong>
        <nav>
          {Object.entries(VIEWS).map(([name, v]) => (
            <a href={`#/${name}`} class={name === view ? "on" : ""} aria-current={name === view ? "page" : undefined} title={`Alt+${v.key}`}>
              {v.title}
            </a>
          ))}
        </nav>
        <span class={`conn ${connected ? "up" : "down"}`} title={connected ? "Live events connected" : "Live events disconnected: reconnecting"} data-connected={connected}>
          {connected ? "● live" : "○ offline"}
        </span>
        <span class="muted small">{version}</span>
        <a class="small" href="/schema">
          API
        </a>
        {accessToken() !== null && (
          <button class="small" onClick={forgetToken} title="Remove the access token from this tab">
            Forget token
          </button>
        )}
      </header>
      <main>
        <View />
      </main>
    </>
  );
}

render(<App />, document.getElementById("app") as HTMLElement);
