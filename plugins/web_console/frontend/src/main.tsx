// The console's shell: a header with the views (chosen by the URL fragment, so each has a link and
// the back button works), the live connection state, and the view itself.
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { V1, get } from "./api";
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
  const name = location.hash.replace(/^#\/?/, "");
  return name in VIEWS ? (name as ViewName) : "gallery";
}

function App() {
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
      </header>
      <main>
        <View />
      </main>
    </>
  );
}

render(<App />, document.getElementById("app") as HTMLElement);
