// Plugins and nodes: what loaded, what failed and why; each node with its fields as the OpenAPI
// document describes them (the same schema generated clients use).
import { useEffect, useState } from "preact/hooks";
import { Capabilities, JsonSchema, PluginInfo, Schemas, V1, errorText, get, loadCapabilities, schemaType } from "../api";
import { Badge, ErrorLine } from "../widgets";

type NodeTemplate = Schemas["NodeTemplate"];

export function Plugins() {
  const [plugins, setPlugins] = useState<PluginInfo[] | null>(null);
  const [nodes, setNodes] = useState<NodeTemplate[] | null>(null);
  const [capabilities, setCapabilities] = useState<Capabilities | null>(null);
  const [filter, setFilter] = useState("");
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    get<PluginInfo[]>(`${V1}/plugins`).then(setPlugins, (e: unknown) => setError(errorText(e)));
    get<NodeTemplate[]>(`${V1}/nodes`).then(setNodes, (e: unknown) => setError(errorText(e)));
    loadCapabilities().then(setCapabilities, (e: unknown) => setError(errorText(e)));
  }, []);
  const failed = plugins?.filter((p) => p.status !== "loaded") ?? [];
  const needle = filter.trim().toLowerCase();
  const shown = (nodes ?? []).filter((n) => !needle || `${n.type} ${n.title} ${n.tags.join(" ")} ${n.plugin}`.toLowerCase().includes(needle));
  return (
    <section class="view plugins" aria-label="Plugins and nodes">
      <ErrorLine error={error} />
      <h2>
        Plugins {plugins && <span class="muted small">{plugins.length - failed.length} loaded, {failed.length} not</span>}
      </h2>
      <table class="plugin-table">
        <thead>
          <tr>
            <th>plugin</th>
            <th>status</th>
            <th>distribution</th>
            <th>registered</th>
          </tr>
        </thead>
        <tbody>
          {[...failed, ...(plugins ?? []).filter((p) => p.status === "loaded")].map((plugin) => (
            <tr data-plugin={plugin.name} data-status={plugin.status} class={plugin.status}>
              <td>
                <strong>{plugin.name}</strong>
                <div class="small muted">{plugin.module}</div>
              </td>
              <td>
                <Badge kind={plugin.status === "loaded" ? "completed" : "failed"}>{plugin.status}</Badge>
              </td>
              <td class="small">
                {plugin.distribution ?? "—"} {plugin.version ?? ""}
              </td>
              <td class="small">
                {Object.entries(plugin.registered)
                  .filter(([, names]) => names.length > 0)
                  .map(([kind, names]) => (
                    <div>
                      <span class="muted">
                        {kind} ({names.length}):
                      </span>{" "}
                      {names.join(", ")}
                    </div>
                  ))}
                {plugin.refused.map((why) => (
                  <div class="error-text">refused: {why}</div>
                ))}
                {plugin.error && (
                  <div class="failure">
                    <div class="error-text">{plugin.error}</div>
                    {plugin.traceback && (
                      <details>
                        <summary>traceback</summary>
                        <pre>{plugin.traceback}</pre>
                      </details>
                    )}
                  </div>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <h2>
        Nodes {nodes && <span class="muted small">{nodes.length}</span>}
      </h2>
      <input type="search" name="node-filter" placeholder="Filter by type, title, tag or plugin" value={filter} onInput={(e) => setFilter(e.currentTarget.value)} />
      <div class="nodes">
        {shown.map((node) => (
          <details class="node card" data-node={node.type}>
            <summary>
              <strong>{node.title}</strong> <code>{node.type}</code> <span class="muted small">v{node.version} · {node.category} · {node.plugin}</span>
            </summary>
            <p class="small">{node.description}</p>
            {capabilities && <Fields title="inputs" schema={capabilities.document.components.schemas[`Invocation.${node.type}`]} capabilities={capabilities} inputs />}
            {capabilities && <Fields title="outputs" schema={capabilities.document.components.schemas[`Output.${node.output_type}`]} capabilities={capabilities} inputs={false} />}
          </details>
        ))}
      </div>
    </section>
  );
}

function Fields({ title, schema, capabilities, inputs }: { title: string; schema: JsonSchema | undefined; capabilities: Capabilities; inputs: boolean }) {
  if (!schema?.properties) return <p class="small muted">No {title} schema in the OpenAPI document.</p>;
  const fields = Object.entries(schema.properties).filter(([name, f]) => name !== "type" && (inputs ? f.field_kind === "input" && !f.ui_hidden : true));
  return (
    <table class="fields">
      <caption>{title}</caption>
      <tbody>
        {fields.map(([name, field]) => (
          <tr>
            <td>
              <code>{name}</code>
              {schema.required?.includes(name) && <span class="error-text" title="required"> *</span>}
            </td>
            <td class="small">{schemaType(field, capabilities.document)}</td>
            <td class="small muted">{field.default !== undefined ? `= ${JSON.stringify(field.default)}` : ""}</td>
            <td class="small">
              {field.input && <span class="muted">[{field.input}] </span>}
              {field.description}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
