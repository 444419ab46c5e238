// What is running now, kept from the events for every view: per item, the node it is on, how far
// that node got and its last preview image.
import { useEffect, useState } from "preact/hooks";
import { EventData, onEvent } from "./events";

export interface Running {
  itemId: number;
  node: string | null;
  message: string | null;
  percentage: number | null;
  preview: string | null;
}

const running = new Map<number, Running>();
const watchers = new Set<() => void>();
let started = false;

function changed(): void {
  for (const watcher of watchers) watcher();
}

function entry(data: EventData): Running {
  const itemId = data.item_id as number;
  let found = running.get(itemId);
  if (!found) running.set(itemId, (found = { itemId, node: null, message: null, percentage: null, preview: null }));
  return found;
}

function start(): void {
  if (started) return;
  started = true;
  onEvent("invocation_started", (data) => {
    const item = entry(data);
    item.node = `${data.invocation_source_id as string} (${data.invocation_type as string})`;
    item.percentage = null;
    item.message = null;
    changed();
  });
  onEvent("invocation_progress", (data) => {
    const item = entry(data);
    item.message = data.message as string;
    item.percentage = (data.percentage as number | null) ?? null;
    const image = data.image as { dataURL: string } | null;
    if (image) item.preview = image.dataURL;
    changed();
  });
  onEvent("queue_item_status_changed", (data) => {
    const status = data.status as string;
    if (status === "in_progress") entry(data);
    else running.delete(data.item_id as number);
    changed();
  });
  onEvent("queue_cleared", () => {
    running.clear();
    changed();
  });
}

/** The running items, re-rendering the caller on every change. */
export function useRunning(): Map<number, Running> {
  const [, setTick] = useState(0);
  useEffect(() => {
    start();
    const watcher = () => setTick((t) => t + 1);
    watchers.add(watcher);
    return () => watchers.delete(watcher);
  }, []);
  return running;
}
