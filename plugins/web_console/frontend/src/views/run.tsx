// Run: a text-to-image form for the installed main models. It builds the graph a client would
// (model loader -> prompts -> noise -> denoise -> l2i) and enqueues it as a batch whose seeds vary
// through the batch's data; a graph or workflow JSON file runs the same way.
import { useEffect, useState } from "preact/hooks";
import { Capabilities, EnqueueBatchBody, ModelSummary, Schemas, V2, errorText, get, loadCapabilities, queuePath, request } from "../api";
import { onEvent } from "../events";
import { useRunning } from "../live";
import { ErrorLine, Progress } from "../widgets";
import { RunWorkflow } from "./workflow";

type Graph = Schemas["Graph"];
type EnqueueResult = Schemas["EnqueueResult"];

interface Form {
  model: string;
  prompt: string;
  negative: string;
  width: number;
  height: number;
  steps: number;
  cfg: number;
  seed: number;
  seeds: number;
  scheduler: string;
}

const edge = (src: string, srcField: string, dst: string, dstField: string) => ({
  source: { node_id: src, field: srcField },
  destination: { node_id: dst, field: dstField },
});

/** The text-to-image graph for one model; SDXL models get their own loader and prompt nodes. */
export function textToImageGraph(form: Form, model: ModelSummary): Graph {
  const sdxl = model.base === "sdxl";
  const nodes: Record<string, Record<string, unknown>> = {
    noise: { type: "noise", seed: form.seed, width: form.width, height: form.height },
    denoise: { type: "denoise_latents", steps: form.steps, cfg_scale: form.cfg, scheduler: form.scheduler },
    l2i: { type: "l2i", is_intermediate: false },
  };
  const edges = [
    edge("model", "unet", "denoise", "unet"),
    edge("positive", "conditioning", "denoise", "positive_conditioning"),
    edge("negative", "conditioning", "denoise", "negative_conditioning"),
    edge("noise", "noise", "denoise", "noise"),
    edge("denoise", "latents", "l2i", "latents"),
    edge("model", "vae", "l2i", "vae"),
  ];
  if (sdxl) {
    const sizes = { original_width: form.width, original_height: form.height, target_width: form.width, target_height: form.height };
    nodes.model = { type: "sdxl_model_loader", model: { key: model.key } };
    nodes.positive = { type: "sdxl_compel_prompt", prompt: form.prompt, ...sizes };
    nodes.negative = { type: "sdxl_compel_prompt", prompt: form.negative, ...sizes };
    for (const prompt of ["positive", "negative"]) edges.push(edge("model", "clip", prompt, "clip"), edge("model", "clip2", prompt, "clip2"));
  } else {
    nodes.model = { type: "main_model_loader", model: { key: model.key } };
    nodes.positive = { type: "compel", prompt: form.prompt };
    nodes.negative = { type: "compel", prompt: form.negative };
    edges.push(edge("model", "clip", "positive", "clip"), edge("model", "clip", "negative", "clip"));
  }
  return { nodes, edges } as unknown as Graph;
}

function metadata(form: Form, model: ModelSummary, seed: number): Record<string, unknown> {
  return {
    generation_mode: "txt2img",
    model: { key: model.key, name: model.name, base: model.base },
    positive_prompt: form.prompt,
    negative_prompt: form.negative,
    width: form.width,
    height: form.height,
    steps: form.steps,
    cfg_scale: form.cfg,
    scheduler: form.scheduler,
    seed,
  };
}

export function textToImageBatch(form: Form, model: ModelSummary): EnqueueBatchBody {
  const seeds = Array.from({ length: Math.max(1, form.seeds) }, (_, i) => (form.seed + i) % 4294967296);
  return {
    batch: {
      graph: textToImageGraph(form, model),
      origin: "web_console",
      // One group: zipped, so each item gets its seed and the metadata that names it.
      data: [[
        { node_path: "noise", field_name: "seed", items: seeds },
        { node_path: "l2i", field_name: "metadata", items: seeds.map((seed) => metadata(form, model, seed)) },
      ]],
    },
  } as unknown as EnqueueBatchBody;
}

function schedulers(capabilities: Capabilities | null): string[] {
  const field = capabilities?.document.components.schemas["Invocation.denoise_latents"]?.properties?.scheduler;
  return (field?.enum as string[] | undefined) ?? ["euler"];
}

export function Run() {
  const [models, setModels] = useState<ModelSummary[] | null>(null);
  const [capabilities, setCapabilities] = useState<Capabilities | null>(null);
  const [form, setForm] = useState<Form>({ model: "", prompt: "a photo of a cat", negative: "", width: 512, height: 512, steps: 20, cfg: 7, seed: 1, seeds: 1, scheduler: "euler" });
  const [error, setError] = useState<string | null>(null);
  const [itemIds, setItemIds] = useState<number[]>([]);
  const [done, setDone] = useState<Record<number, string>>({});
  const running = useRunning();

  useEffect(() => {
    get<{ models: ModelSummary[] }>(`${V2}/models?type=main`).then(
      (list) => {
        setModels(list.models);
        if (list.models.length > 0) setForm((f) => ({ ...f, model: f.model || list.models[0].key }));
      },
      (e: unknown) => setError(errorText(e)),
    );
    void loadCapabilities().then(setCapabilities);
    return onEvent("queue_item_status_changed", (data) => {
      const status = data.status as string;
      if (status !== "pending" && status !== "in_progress") setDone((d) => ({ ...d, [data.item_id as number]: status }));
    });
  }, []);

  const enqueue = async (body: EnqueueBatchBody) => {
    setError(null);
    try {
      const result = await request<EnqueueResult>("POST", queuePath("/enqueue_batch"), body);
      setItemIds(result.item_ids);
      setDone({});
    } catch (e) {
      setError(errorText(e));
    }
  };

  const submit = (event: Event) => {
    event.preventDefault();
    const model = models?.find((m) => m.key === form.model);
    if (!model) {
      setError("Choose a model first: install one in the Models view.");
      return;
    }
    void enqueue(textToImageBatch(form, model));
  };

  const runFile = async (files: FileList | null) => {
    const file = files?.[0];
    if (!file) return;
    try {
      const parsed = JSON.parse(await file.text()) as Record<string, unknown>;
      // A graph as the API takes it, or a workflow/batch document that holds one under "graph".
      const graph = (parsed.nodes ? parsed : parsed.graph) as Graph | undefined;
      if (!graph || typeof graph !== "object") throw new Error(`${file.name} holds no graph: expected "nodes" and "edges", or a "graph" key`);
      await enqueue({ batch: { graph, origin: "web_console" } } as unknown as EnqueueBatchBody);
    } catch (e) {
      setError(errorText(e));
    }
  };

  const number = (name: keyof Form, props: Record<string, number>) => (
    <label>
      {name}
      <input type="number" name={name} value={form[name] as number} {...props} onInput={(e) => setForm({ ...form, [name]: Number(e.currentTarget.value) })} />
    </label>
  );

  return (
    <section class="view run" aria-label="Run">
      <form class="card run-form" onSubmit={submit}>
        <h2>Text to image</h2>
        <label class="wide">
          model
          <select name="model" value={form.model} onChange={(e) => setForm({ ...form, model: e.currentTarget.value })}>
            {models?.length === 0 && <option value="">no main model installed</option>}
            {models?.map((m) => (
              <option value={m.key}>
                {m.name} ({m.base})
              </option>
            ))}
          </select>
        </label>
        <label class="wide">
          prompt
          <textarea name="prompt" rows={3} value={form.prompt} onInput={(e) => setForm({ ...form, prompt: e.currentTarget.value })} />
        </label>
        <label class="wide">
          negative
          <textarea name="negative" rows={2} value={form.negative} onInput={(e) => setForm({ ...form, negative: e.currentTarget.value })} />
        </label>
        {number("width", { min: 64, step: 8, max: 4096 })}
        {number("height", { min: 64, step: 8, max: 4096 })}
        {number("steps", { min: 1, max: 10000 })}
        {number("cfg", { min: 0, step: 0.5, max: 50 })}
        {number("seed", { min: 0, max: 4294967295 })}
        {number("seeds", { min: 1, max: 100 })}
        <label>
          scheduler
          <select name="scheduler" value={form.scheduler} onChange={(e) => setForm({ ...form, scheduler: e.currentTarget.value })}>
            {schedulers(capabilities).map((s) => (
              <option value={s}>{s}</option>
            ))}
          </select>
        </label>
        <div class="wide buttons">
          <button type="submit" class="primary" disabled={!models?.length}>
            Generate
          </button>
          <label class="upload">
            or run a graph JSON <input type="file" accept="application/json,.json" name="graph-file" onChange={(e) => void runFile(e.currentTarget.files)} />
          </label>
        </div>
        <ErrorLine error={error} />
      </form>
      <RunWorkflow
        onEnqueued={(result) => {
          // Followed in the queue view, which opens on the run's first item.
          location.hash = `#/queue/${result.item_ids[0] ?? ""}`;
        }}
      />
      {itemIds.length > 0 && (
        <div class="card runs" aria-label="This run">
          <h2>This run</h2>
          <ul>
            {itemIds.map((id) => {
              const live = running.get(id);
              return (
                <li data-run-item={id} data-status={done[id] ?? (live ? "in_progress" : "pending")}>
                  item {id}: {done[id] ?? (live ? "running" : "pending")}
                  {live && !done[id] && (
                    <span class="live">
                      {live.preview && <img class="preview" src={live.preview} alt="preview" width={64} height={64} />}
                      <span class="small">{live.node}</span> <Progress value={live.percentage} label={live.message ?? "running"} />
                    </span>
                  )}
                </li>
              );
            })}
          </ul>
          <p class="small muted">
            Finished images land in the <a href="#/gallery">gallery</a>; the <a href="#/queue">queue</a> shows every item.
          </p>
        </div>
      )}
    </section>
  );
}
