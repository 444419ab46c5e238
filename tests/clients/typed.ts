// What a client author writes against the types openapi-typescript generates from our document
// (tests/test_generated_clients.py compiles it with tsc --strict; schema.d.ts is generated next to it).
import type { components, paths } from "./schema";

type Schemas = components["schemas"];
type Enqueue = paths["/api/v1/queue/{queue_id}/enqueue_batch"]["post"];
type EnqueueBody = NonNullable<Enqueue["requestBody"]>["content"]["application/json"];
type EnqueueResult = Enqueue["responses"]["201"]["content"]["application/json"];
type ErrorBody = Enqueue["responses"]["422"]["content"]["application/json"];
type ModelConfig = paths["/api/v2/models/i/{key}"]["get"]["responses"]["200"]["content"]["application/json"];

const graph: Schemas["Graph"] = {
  nodes: {
    two: { id: "two", type: "integer", value: 2 },
    sum: { id: "sum", type: "add", b: 3 },
  },
  edges: [{ source: { node_id: "two", field: "value" }, destination: { node_id: "sum", field: "a" } }],
};

const body: EnqueueBody = { batch: { graph, runs: 1 } };

export async function enqueue(base: string): Promise<number[]> {
  const answer = await fetch(`${base}/api/v1/queue/default/enqueue_batch`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  if (answer.status === 422) {
    const error = (await answer.json()) as ErrorBody;
    const where = Array.isArray(error.extra) ? error.extra.map((e) => `${e.node_id}.${e.field}`) : [];
    throw new Error(`${error.status_code}: ${error.detail} ${where.join(", ")}`);
  }
  const result = (await answer.json()) as EnqueueResult;
  return result.item_ids;
}

// An event narrowed on its name, then its output narrowed on the output type.
export function sumOf(message: Schemas["AnyEventMessage"]): number | null {
  if (message.event !== "invocation_complete") {
    return null;
  }
  const result = message.data.result;
  if (result.type === "integer_output") {
    const value: number = result.value;
    return value;
  }
  return null;
}

// A model config narrowed on its type and format.
export function checkpointOf(config: ModelConfig): string | null {
  if (config.type === "main" && config.format === "checkpoint") {
    return config.path;
  }
  return null;
}
