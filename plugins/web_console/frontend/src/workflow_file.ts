// Reading a workflow in the browser: from a JSON file (an InvokeAI workflow, a graph, or a document holding one
// under "graph"), or from the text chunks of a PNG made by this server or by InvokeAI ("invokeai_workflow",
// "invokeai_graph"; tEXt, zTXt or iTXt). No server route is needed for what the file itself holds.

export type GraphJson = { nodes: Record<string, Record<string, unknown>>; edges: unknown[]; [extra: string]: unknown };

/** InvokeAI's workflow JSON, as far as the console reads it. */
export interface WorkflowJson {
  name?: string;
  description?: string;
  nodes?: { id: string; type?: string; data?: WorkflowNodeData }[];
  edges?: { type?: string; source: string; sourceHandle?: string; target: string; targetHandle?: string }[];
  exposedFields?: { nodeId: string; fieldName: string }[];
  [extra: string]: unknown;
}

export interface WorkflowNodeData {
  id?: string;
  type?: string;
  label?: string;
  isIntermediate?: boolean;
  useCache?: boolean;
  inputs?: Record<string, { name?: string; label?: string; description?: string; value?: unknown }>;
}

export interface LoadedWorkflow {
  name: string;
  graph: GraphJson;
  workflow: WorkflowJson | null;
}

const PNG_SIGNATURE = [137, 80, 78, 71, 13, 10, 26, 10];

async function inflate(data: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([data.slice()]).stream().pipeThrough(new DecompressionStream("deflate"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** The text chunks of a PNG, keyword -> text. */
export async function pngTextChunks(bytes: Uint8Array): Promise<Record<string, string>> {
  if (bytes.length < 8 || PNG_SIGNATURE.some((b, i) => bytes[i] !== b)) throw new Error("the file is not a PNG");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const latin1 = new TextDecoder("latin1");
  const utf8 = new TextDecoder("utf-8");
  const out: Record<string, string> = {};
  let at = 8;
  while (at + 8 <= bytes.length) {
    const length = view.getUint32(at);
    const type = latin1.decode(bytes.subarray(at + 4, at + 8));
    const data = bytes.subarray(at + 8, Math.min(at + 8 + length, bytes.length));
    at += 12 + length;
    if (type === "IEND") break;
    if (type !== "tEXt" && type !== "zTXt" && type !== "iTXt") continue;
    const zero = data.indexOf(0);
    if (zero < 0) continue;
    const keyword = latin1.decode(data.subarray(0, zero));
    if (type === "tEXt") {
      out[keyword] = latin1.decode(data.subarray(zero + 1));
    } else if (type === "zTXt") {
      out[keyword] = latin1.decode(await inflate(data.subarray(zero + 2)));
    } else {
      const compressed = data[zero + 1] === 1;
      const language = data.indexOf(0, zero + 3);
      const translated = language < 0 ? -1 : data.indexOf(0, language + 1);
      if (translated < 0) continue;
      const text = data.subarray(translated + 1);
      out[keyword] = utf8.decode(compressed ? await inflate(text) : text);
    }
  }
  return out;
}

/** The graph an InvokeAI workflow stands for: its invocation nodes with their input values, and its edges
 * (a connected input takes no value). Node versions are left out: absent means the installed one. */
export function graphFromWorkflow(workflow: WorkflowJson): GraphJson {
  const nodes: Record<string, Record<string, unknown>> = {};
  const invocations = (workflow.nodes ?? []).filter((n) => (n.type ?? "invocation") === "invocation" && n.data?.type);
  const ids = new Set(invocations.map((n) => n.id));
  const edges = (workflow.edges ?? [])
    .filter((e) => e.type !== "collapsed" && ids.has(e.source) && ids.has(e.target) && e.sourceHandle && e.targetHandle)
    .map((e) => ({ source: { node_id: e.source, field: e.sourceHandle }, destination: { node_id: e.target, field: e.targetHandle } }));
  const connected = new Set(edges.map((e) => `${e.destination.node_id}.${e.destination.field}`));
  for (const node of invocations) {
    const data = node.data as WorkflowNodeData;
    const values: Record<string, unknown> = { type: data.type };
    for (const [name, input] of Object.entries(data.inputs ?? {})) {
      if (input.value !== undefined && !connected.has(`${node.id}.${name}`)) values[name] = input.value;
    }
    if (data.isIntermediate !== undefined) values.is_intermediate = data.isIntermediate;
    if (data.useCache !== undefined) values.use_cache = data.useCache;
    nodes[node.id] = values;
  }
  return { nodes, edges };
}

function parse(text: string, what: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new Error(`${what} is not JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
}

function isGraph(value: unknown): value is GraphJson {
  return typeof value === "object" && value !== null && !Array.isArray((value as GraphJson).nodes) && typeof (value as GraphJson).nodes === "object";
}

function isWorkflow(value: unknown): value is WorkflowJson {
  return typeof value === "object" && value !== null && Array.isArray((value as WorkflowJson).nodes);
}

function fromDocument(document: unknown, name: string): LoadedWorkflow {
  if (isWorkflow(document)) return { name: document.name || name, graph: graphFromWorkflow(document), workflow: document };
  if (isGraph(document)) return { name, graph: document, workflow: null };
  const holder = document as { graph?: unknown; workflow?: unknown; name?: string };
  if (holder && isGraph(holder.graph)) {
    const workflow = typeof holder.workflow === "string" ? parse(holder.workflow, "its workflow") : holder.workflow;
    return { name: holder.name || name, graph: holder.graph, workflow: isWorkflow(workflow) ? workflow : null };
  }
  throw new Error(`${name} holds no workflow or graph: expected an InvokeAI workflow ("nodes" as a list), a graph ("nodes" and "edges"), or a "graph" key`);
}

/** A workflow from a file the person chose: JSON, or a PNG carrying one. */
export async function readWorkflowFile(file: File): Promise<LoadedWorkflow> {
  const bytes = new Uint8Array(await file.arrayBuffer());
  if (bytes[0] === 137 && bytes[1] === 80) {
    const chunks = await pngTextChunks(bytes);
    const workflowText = chunks.invokeai_workflow;
    const graphText = chunks.invokeai_graph;
    if (!workflowText && !graphText) throw new Error(`${file.name} carries no workflow or graph (no invokeai_workflow or invokeai_graph text chunk)`);
    const workflow = workflowText ? parse(workflowText, `the workflow in ${file.name}`) : null;
    const graph = graphText ? parse(graphText, `the graph in ${file.name}`) : null;
    // The graph the image was made from is what ran; the workflow (when there is one) says which fields it exposes.
    if (isGraph(graph)) {
      const w = isWorkflow(workflow) ? workflow : null;
      return { name: w?.name || file.name, graph, workflow: w };
    }
    return fromDocument(workflow, file.name);
  }
  return fromDocument(parse(new TextDecoder().decode(bytes), file.name), file.name);
}
