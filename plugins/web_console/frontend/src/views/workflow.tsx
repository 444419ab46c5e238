// "Run a workflow": from the library (GET /workflows, run by id with its fields' values) or from a JSON or PNG file
// read in the browser (enqueued as a batch with the workflow attached, saved to the library first only when asked).
// The workflow's exposed fields become a form typed from each node's field schema in our OpenAPI document.
import { useEffect, useState } from "preact/hooks";
import { ApiError, Capabilities, ImageDTOPage, JsonSchema, ModelSummary, OpenApiDocument, Schemas, V1, V2, errorText, get, loadCapabilities, queuePath, request } from "../api";
import { GraphJson, LoadedWorkflow, WorkflowJson, readWorkflowFile } from "../workflow_file";
import { ApiImage, ErrorLine } from "../widgets";

type EnqueueResult = Schemas["EnqueueResult"];
type WorkflowView = Schemas["WorkflowView"];
type WorkflowListPage = Schemas["WorkflowListPage"];

interface Source extends LoadedWorkflow {
  /** The library id, for a workflow read from the library; null for a file. */
  id: string | null;
}

/** One exposed field: where it is, what it is called, and the schema its input is typed from. */
export interface Exposed {
  key: string;
  nodeId: string;
  field: string;
  label: string;
  description: string;
  schema: JsonSchema | null;
  initial: unknown;
}

type Kind =
  | { kind: "number"; integer: boolean; min?: number; max?: number; step?: number }
  | { kind: "text"; multiline: boolean }
  | { kind: "boolean" }
  | { kind: "enum"; options: unknown[] }
  | { kind: "model" }
  | { kind: "image" }
  | { kind: "json" };

function refName(schema: JsonSchema): string | null {
  return schema.$ref ? (schema.$ref.split("/").pop() ?? null) : null;
}

/** What input a field schema asks for: a nullable field (anyOf with null) is typed by its other branch. */
export function fieldKind(schema: JsonSchema | null, document: OpenApiDocument, name: string): Kind {
  if (!schema) return { kind: "json" };
  const branches = (schema.anyOf ?? schema.oneOf ?? []).filter((s) => s.type !== "null");
  const base: JsonSchema = branches.length === 1 ? { ...schema, ...branches[0], anyOf: undefined, oneOf: undefined } : schema;
  const ref = refName(base);
  if (ref === "ModelIdentifierField") return { kind: "model" };
  if (ref === "ImageField") return { kind: "image" };
  const resolved = ref ? (document.components.schemas[ref] ?? base) : base;
  if (resolved.enum) return { kind: "enum", options: resolved.enum };
  const type = Array.isArray(resolved.type) ? resolved.type.find((t) => t !== "null") : resolved.type;
  if (type === "integer" || type === "number") {
    const integer = type === "integer";
    const exclusiveMin = resolved.exclusiveMinimum as number | undefined;
    const exclusiveMax = resolved.exclusiveMaximum as number | undefined;
    const min = (resolved.minimum as number | undefined) ?? (exclusiveMin !== undefined && integer ? exclusiveMin + 1 : exclusiveMin);
    const max = (resolved.maximum as number | undefined) ?? (exclusiveMax !== undefined && integer ? exclusiveMax - 1 : exclusiveMax);
    const step = (resolved.multipleOf as number | undefined) ?? (integer ? 1 : undefined);
    return { kind: "number", integer, min, max, step };
  }
  if (type === "boolean") return { kind: "boolean" };
  if (type === "string") return { kind: "text", multiline: resolved.ui_component === "textarea" || /prompt/i.test(name) };
  return { kind: "json" };
}

/** The exposed fields of a workflow over its graph, labelled from the workflow's node data, typed from the schema. */
export function exposedFields(source: LoadedWorkflow, document: OpenApiDocument): Exposed[] {
  const workflow: WorkflowJson | null = source.workflow;
  return (workflow?.exposedFields ?? []).map(({ nodeId, fieldName }) => {
    const node = source.graph.nodes[nodeId] as Record<string, unknown> | undefined;
    const type = (node?.type as string | undefined) ?? "";
    const schema = document.components.schemas[`Invocation.${type}`]?.properties?.[fieldName] ?? null;
    const data = workflow?.nodes?.find((n) => n.id === nodeId)?.data;
    const input = data?.inputs?.[fieldName];
    const nodeLabel = data?.label || type || nodeId;
    return {
      key: `${nodeId}.${fieldName}`,
      nodeId,
      field: fieldName,
      label: `${nodeLabel}: ${input?.label || schema?.title || fieldName}`,
      description: input?.description || schema?.description || "",
      schema,
      initial: node && fieldName in node ? node[fieldName] : (input?.value ?? schema?.default ?? null),
    };
  });
}

/** The graph with the form's values written in (a file's workflow runs through enqueue_batch). */
export function withValues(graph: GraphJson, values: Record<string, unknown>): GraphJson {
  const nodes = { ...graph.nodes };
  for (const [key, value] of Object.entries(values)) {
    const dot = key.lastIndexOf(".");
    const nodeId = key.slice(0, dot);
    if (nodes[nodeId]) nodes[nodeId] = { ...nodes[nodeId], [key.slice(dot + 1)]: value };
  }
  return { ...graph, nodes };
}

/** The problems of a 422, by field key ("<node>.<field>"); the ones that name no field under "". */
function errorsByField(error: ApiError, keys: Set<string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of error.errors) {
    const key = (e.key as string | undefined) ?? (e.node_id && e.field ? `${String(e.node_id)}.${String(e.field)}` : "");
    const message = String(e.message ?? e.msg ?? JSON.stringify(e));
    const at = keys.has(key) ? key : "";
    out[at] = out[at] ? `${out[at]}; ${key && !at ? `${key}: ` : ""}${message}` : `${key && !at ? `${key}: ` : ""}${message}`;
  }
  return out;
}

function FieldInput(props: { field: Exposed; kind: Kind; value: unknown; onChange: (value: unknown) => void; models: ModelSummary[]; images: string[] }) {
  const { field, kind, value, onChange } = props;
  const name = `field:${field.key}`;
  switch (kind.kind) {
    case "number":
      return (
        <input
          type="number"
          name={name}
          value={value === null || value === undefined ? "" : String(value)}
          min={kind.min}
          max={kind.max}
          step={kind.step ?? "any"}
          onInput={(e) => {
            const text = e.currentTarget.value;
            onChange(text === "" ? null : Number(text));
          }}
        />
      );
    case "boolean":
      return <input type="checkbox" name={name} checked={Boolean(value)} onChange={(e) => onChange(e.currentTarget.checked)} />;
    case "enum":
      return (
        <select name={name} value={JSON.stringify(value)} onChange={(e) => onChange(JSON.parse(e.currentTarget.value))}>
          {kind.options.map((option) => (
            <option value={JSON.stringify(option)}>{String(option)}</option>
          ))}
        </select>
      );
    case "model": {
      const current = (value as { key?: string } | null)?.key ?? "";
      return (
        <select
          name={name}
          value={current}
          onChange={(e) => {
            const model = props.models.find((m) => m.key === e.currentTarget.value);
            onChange(model ? { key: model.key, name: model.name, base: model.base, type: model.type } : null);
          }}
        >
          {!props.models.some((m) => m.key === current) && <option value={current}>{current ? `${current} (not installed)` : "choose a model"}</option>}
          {props.models.map((m) => (
            <option value={m.key}>
              {m.name} ({m.base} {m.type})
            </option>
          ))}
        </select>
      );
    }
    case "image": {
      const current = (value as { image_name?: string } | null)?.image_name ?? "";
      return (
        <span class="image-pick">
          <select name={name} value={current} onChange={(e) => onChange(e.currentTarget.value ? { image_name: e.currentTarget.value } : null)}>
            {!props.images.includes(current) && <option value={current}>{current || "choose an image"}</option>}
            {props.images.map((image) => (
              <option value={image}>{image}</option>
            ))}
          </select>
          {current && <ApiImage src={`${V1}/images/i/${encodeURIComponent(current)}/thumbnail`} alt={current} width={48} height={48} />}
        </span>
      );
    }
    case "text":
      return kind.multiline ? (
        <textarea name={name} rows={2} value={String(value ?? "")} onInput={(e) => onChange(e.currentTarget.value)} />
      ) : (
        <input type="text" name={name} value={String(value ?? "")} onInput={(e) => onChange(e.currentTarget.value)} />
      );
    default:
      return (
        <textarea
          name={name}
          rows={2}
          class="mono"
          value={JSON.stringify(value)}
          onInput={(e) => {
            try {
              onChange(JSON.parse(e.currentTarget.value));
            } catch {
              // not JSON yet: keep the last good value until it is
            }
          }}
        />
      );
  }
}

export function RunWorkflow({ onEnqueued }: { onEnqueued: (result: EnqueueResult) => void }) {
  const [library, setLibrary] = useState<WorkflowListPage["items"] | null>(null);
  const [capabilities, setCapabilities] = useState<Capabilities | null>(null);
  const [models, setModels] = useState<ModelSummary[]>([]);
  const [images, setImages] = useState<string[]>([]);
  const [source, setSource] = useState<Source | null>(null);
  const [values, setValues] = useState<Record<string, unknown>>({});
  const [fieldErrors, setFieldErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState<string | null>(null);
  const [save, setSave] = useState(false);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    get<WorkflowListPage>(`${V1}/workflows/?per_page=100`).then((page) => setLibrary(page.items), (e: unknown) => setError(errorText(e)));
    void loadCapabilities().then(setCapabilities);
    get<{ models: ModelSummary[] }>(`${V2}/models`).then((list) => setModels(list.models), () => setModels([]));
    get<ImageDTOPage>(`${V1}/images?limit=100&order_dir=DESC`).then((page) => setImages(page.items.map((i) => i.image_name)), () => setImages([]));
  }, []);

  const choose = (loaded: Source) => {
    setSource(loaded);
    setValues({});
    setFieldErrors({});
    setError(null);
  };
  const fromLibrary = async (id: string) => {
    if (!id) return;
    try {
      const view = await get<WorkflowView>(`${V1}/workflows/i/${encodeURIComponent(id)}`);
      const workflow = (typeof view.workflow === "string" ? JSON.parse(view.workflow) : view.workflow) as WorkflowJson | null;
      choose({ id: view.workflow_id, name: view.name, graph: view.graph as unknown as GraphJson, workflow });
    } catch (e) {
      setError(errorText(e));
    }
  };
  const fromFile = async (files: FileList | null) => {
    const file = files?.[0];
    if (!file) return;
    try {
      choose({ id: null, ...(await readWorkflowFile(file)) });
    } catch (e) {
      setSource(null);
      setError(errorText(e));
    }
  };

  const document = capabilities?.document ?? null;
  const fields = source && document ? exposedFields(source, document) : [];

  const run = async (event: Event) => {
    event.preventDefault();
    if (!source) return;
    setBusy(true);
    setError(null);
    setFieldErrors({});
    try {
      let id = source.id;
      if (id === null && save) {
        const saved = await request<WorkflowView>("POST", `${V1}/workflows/`, { name: source.name.slice(0, 200) || "workflow", graph: source.graph, workflow: source.workflow ?? undefined });
        id = saved.workflow_id;
        setSource({ ...source, id });
        setLibrary((old) => (old ? [saved as unknown as WorkflowListPage["items"][number], ...old] : old));
      }
      const result =
        id !== null
          ? await request<EnqueueResult>("POST", `${V1}/workflows/i/${encodeURIComponent(id)}/enqueue`, { values, origin: "web_console" })
          : await request<EnqueueResult>("POST", queuePath("/enqueue_batch"), {
              batch: { graph: withValues(source.graph, values), workflow: source.workflow ?? undefined, origin: "web_console" },
            });
      onEnqueued(result);
    } catch (e) {
      if (e instanceof ApiError && e.errors.length > 0) {
        const byField = errorsByField(e, new Set(fields.map((f) => f.key)));
        setFieldErrors(byField);
        setError(byField[""] ?? e.message);
      } else {
        setError(errorText(e));
      }
    } finally {
      setBusy(false);
    }
  };

  return (
    <form class="card run-workflow" aria-label="Run a workflow" onSubmit={(e) => void run(e)} noValidate>
      <h2>Run a workflow</h2>
      <div class="toolbar">
        <label>
          from the library{" "}
          <select name="workflow" value={source?.id ?? ""} onChange={(e) => void fromLibrary(e.currentTarget.value)}>
            <option value="">{library === null ? "loading…" : library.length === 0 ? "the library is empty" : "choose a workflow"}</option>
            {library?.map((w) => (
              <option value={w.workflow_id}>{w.name}</option>
            ))}
          </select>
        </label>
        <label class="upload">
          or a workflow file (JSON or PNG) <input type="file" accept="application/json,.json,image/png" name="workflow-file" onChange={(e) => void fromFile(e.currentTarget.files)} />
        </label>
      </div>
      {source && (
        <div class="workflow-form" data-workflow={source.id ?? "file"}>
          <h3>
            {source.name} <span class="muted small">{source.id === null ? "from a file" : source.id}</span>
          </h3>
          {source.workflow?.description && <p class="muted">{source.workflow.description}</p>}
          {fields.length === 0 && <p class="muted">This workflow exposes no fields: it runs as it was saved.</p>}
          {fields.map((field) => {
            const kind = fieldKind(field.schema, document as OpenApiDocument, field.field);
            const value = field.key in values ? values[field.key] : field.initial;
            return (
              <div class={`field ${fieldErrors[field.key] ? "invalid" : ""}`} data-field={field.key} data-kind={kind.kind}>
                <label>
                  <span>{field.label}</span>
                  <FieldInput field={field} kind={kind} value={value} models={models} images={images} onChange={(v) => {
                    setValues({ ...values, [field.key]: v });
                    // The server's word on the old value no longer holds.
                    if (fieldErrors[field.key]) setFieldErrors({ ...fieldErrors, [field.key]: "" });
                  }} />
                </label>
                {field.description && <span class="muted small">{field.description}</span>}
                {fieldErrors[field.key] && (
                  <span class="error small field-error" role="alert">
                    {fieldErrors[field.key]}
                  </span>
                )}
              </div>
            );
          })}
          <div class="buttons">
            <button type="submit" class="primary" disabled={busy}>
              Run workflow
            </button>
            {source.id === null && (
              <label>
                <input type="checkbox" name="save-workflow" checked={save} onChange={(e) => setSave(e.currentTarget.checked)} /> save it to the library first
              </label>
            )}
          </div>
        </div>
      )}
      <ErrorLine error={error} />
    </form>
  );
}
