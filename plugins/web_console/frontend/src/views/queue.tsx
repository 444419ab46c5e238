// Queue: items live over the websocket, cancel, retry (when the server offers retry_items_by_id),
// pause/resume, prune, and the error view of a failed item (node, field, message, traceback).
import { useCallback, useEffect, useState } from "preact/hooks";
import { Capabilities, QUEUE_ID, QueueAndProcessor, QueueItemPage, QueueItemSummary, QueueItemView, errorText, get, loadCapabilities, queuePath, request } from "../api";
import { onEvent } from "../events";
import { Running, useRunning } from "../live";
import { Badge, ErrorLine, Progress } from "../widgets";

const PAGE = 100;

export function Queue() {
  const [status, setStatus] = useState<QueueAndProcessor | null>(null);
  const [items, setItems] = useState<QueueItemSummary[]>([]);
  const [total, setTotal] = useState(0);
  const [error, setError] = useState<string | null>(null);
  const [detail, setDetail] = useState<number | null>(null);
  const [capabilities, setCapabilities] = useState<Capabilities | null>(null);
  // "#/queue/<item id>" follows that item (a run just enqueued from the Run view): it is marked and kept in view.
  const [followed, setFollowed] = useState<number | null>(followedItem());
  const running = useRunning();
  useEffect(() => {
    const onHash = () => setFollowed(followedItem());
    window.addEventListener("hashchange", onHash);
    return () => window.removeEventListener("hashchange", onHash);
  }, []);
  useEffect(() => {
    if (followed !== null) document.querySelector(`tr[data-item="${followed}"]`)?.scrollIntoView({ block: "nearest" });
  }, [followed, items]);

  const reload = useCallback(async () => {
    try {
      const [s, firstPage] = await Promise.all([get<QueueAndProcessor>(queuePath("/status")), get<QueueItemPage>(queuePath(`/list?limit=1`))]);
      // Newest first: the last page of the execution order, read backwards.
      const offset = Math.max(0, firstPage.total - PAGE);
      const page = await get<QueueItemPage>(queuePath(`/list?limit=${PAGE}&offset=${offset}`));
      setStatus(s);
      setItems([...(page.items as QueueItemSummary[])].reverse());
      setTotal(page.total);
      setError(null);
    } catch (e) {
      setError(errorText(e));
    }
  }, []);

  useEffect(() => {
    void reload();
    void loadCapabilities().then(setCapabilities);
    const names = ["queue_item_status_changed", "batch_enqueued", "queue_cleared", "queue_items_canceled", "events_missed"];
    const stops = names.map((name) => onEvent(name, () => void reload()));
    return () => stops.forEach((stop) => stop());
  }, [reload]);

  const act = async (method: string, path: string, body?: unknown) => {
    try {
      await request(method, path, body);
      await reload();
    } catch (e) {
      setError(errorText(e));
    }
  };
  const retry = capabilities?.operation("retry_items_by_id") ?? null;
  const retryItem = (itemId: number) => {
    if (!retry) return;
    const schema = retry.body as { type?: string } | null;
    // InvokeAI's shape is a bare list of ids; an object body carries them as item_ids.
    void act(retry.method, retry.path.replace("{queue_id}", QUEUE_ID), schema?.type === "array" ? [itemId] : { item_ids: [itemId] });
  };

  const processor = status?.processor;
  const counts = status?.queue;
  return (
    <section class="view queue" aria-label="Queue">
      <div class="toolbar">
        {counts && (
          <span class="counts">
            <Badge kind="pending">{counts.pending} pending</Badge> <Badge kind="in_progress">{counts.in_progress} running</Badge>{" "}
            <Badge kind="completed">{counts.completed} completed</Badge> <Badge kind="failed">{counts.failed} failed</Badge>{" "}
            <Badge kind="canceled">{counts.canceled} canceled</Badge>
          </span>
        )}
        {processor && <span class="muted">processor: {processor.is_started ? (processor.is_processing ? "running" : "idle") : "paused"}</span>}
        {processor?.is_started ? (
          <button onClick={() => void act("PUT", queuePath("/processor/pause"))}>Pause</button>
        ) : (
          <button onClick={() => void act("PUT", queuePath("/processor/resume"))}>Resume</button>
        )}
        <button onClick={() => void act("PUT", queuePath("/cancel_all_except_current"))}>Cancel pending</button>
        <button onClick={() => void act("PUT", queuePath("/prune"))} title="Delete completed, failed and canceled items">
          Prune
        </button>
      </div>
      <ErrorLine error={error} />
      {items.length === 0 && <p class="empty">The queue is empty.</p>}
      <table class="items">
        <thead>
          <tr>
            <th>#</th>
            <th>status</th>
            <th>now</th>
            <th>batch</th>
            <th>updated</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {items.map((item) => (
            <ItemRow item={item} followed={item.item_id === followed} live={running.get(item.item_id)} onOpen={() => setDetail(item.item_id)} onCancel={() => void act("PUT", queuePath(`/i/${item.item_id}/cancel`))} onRetry={retry ? () => retryItem(item.item_id) : null} />
          ))}
        </tbody>
      </table>
      {total > items.length && <p class="muted small">Showing the newest {items.length} of {total} items.</p>}
      {detail !== null && <ItemDetail itemId={detail} onClose={() => setDetail(null)} />}
    </section>
  );
}

function followedItem(): number | null {
  const match = /^#\/queue\/(\d+)$/.exec(location.hash);
  return match ? Number(match[1]) : null;
}

function ItemRow(props: { item: QueueItemSummary; followed: boolean; live: Running | undefined; onOpen: () => void; onCancel: () => void; onRetry: (() => void) | null }) {
  const { item, live } = props;
  const active = item.status === "pending" || item.status === "in_progress";
  return (
    <tr class={`item ${item.status} ${props.followed ? "followed" : ""}`} data-item={item.item_id} data-status={item.status} aria-current={props.followed ? "true" : undefined}>
      <td>
        <button class="link" onClick={props.onOpen}>
          {item.item_id}
        </button>
      </td>
      <td>
        <Badge kind={item.status}>{item.status}</Badge>
      </td>
      <td class="now">
        {item.status === "in_progress" && live ? (
          <span class="live">
            {live.preview && <img class="preview" src={live.preview} alt="preview" width={48} height={48} />}
            <span>
              <span class="small">{live.node ?? "starting"}</span>
              <Progress value={live.percentage} label={live.message ?? "running"} />
            </span>
          </span>
        ) : item.status === "failed" ? (
          <button class="link error-text" onClick={props.onOpen}>
            {item.error_type}: {(item.error_message ?? "").slice(0, 120)}
          </button>
        ) : null}
      </td>
      <td class="small muted">{item.batch_id.slice(0, 8)}</td>
      <td class="small muted">{new Date(item.updated_at).toLocaleTimeString()}</td>
      <td>
        {active && (
          <button class="danger" onClick={props.onCancel}>
            Cancel
          </button>
        )}
        {!active && props.onRetry && <button onClick={props.onRetry}>Retry</button>}
      </td>
    </tr>
  );
}

function ItemDetail({ itemId, onClose }: { itemId: number; onClose: () => void }) {
  const [view, setView] = useState<QueueItemView | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    get<QueueItemView>(queuePath(`/i/${itemId}`)).then(setView, (e: unknown) => setError(errorText(e)));
    const close = (e: KeyboardEvent) => e.key === "Escape" && onClose();
    window.addEventListener("keydown", close);
    return () => window.removeEventListener("keydown", close);
  }, [itemId, onClose]);
  return (
    <div class="overlay" role="dialog" aria-modal="true" aria-label={`Queue item ${itemId}`} onClick={(e) => e.target === e.currentTarget && onClose()}>
      <div class="panel">
        <header>
          <strong>Item {itemId}</strong> {view && <Badge kind={view.status}>{view.status}</Badge>}
          <button class="right" onClick={onClose}>
            Close
          </button>
        </header>
        <ErrorLine error={error} />
        {view && view.status === "failed" && (
          <div class="failure" role="alert">
            {view.errors.length > 0 ? (
              view.errors.map((e) => (
                <dl class="node-error">
                  <dt>node</dt>
                  <dd>
                    {e.source_node_id}
                    {e.node_id !== e.source_node_id ? ` (${e.node_id})` : ""}
                  </dd>
                  {e.field && (
                    <>
                      <dt>field</dt>
                      <dd>{e.field}</dd>
                    </>
                  )}
                  <dt>error</dt>
                  <dd>
                    {e.error_type}: {e.message}
                  </dd>
                  <dt>traceback</dt>
                  <dd>
                    <details>
                      <summary>show</summary>
                      <pre>{e.traceback}</pre>
                    </details>
                  </dd>
                </dl>
              ))
            ) : (
              <dl class="node-error">
                <dt>error</dt>
                <dd>
                  {view.error_type}: {view.error_message}
                </dd>
                {view.error_traceback && (
                  <>
                    <dt>traceback</dt>
                    <dd>
                      <pre>{view.error_traceback}</pre>
                    </dd>
                  </>
                )}
              </dl>
            )}
          </div>
        )}
        {view && (
          <details>
            <summary>Session (graph and results)</summary>
            <pre class="json">{JSON.stringify(view.session, null, 2)}</pre>
          </details>
        )}
      </div>
    </div>
  );
}
