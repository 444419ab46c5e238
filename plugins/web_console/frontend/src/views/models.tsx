// Models: the installed models, install from a path, an URL or a Hugging Face repo id with live
// progress (the model_install_* events), and delete.
import { useCallback, useEffect, useState } from "preact/hooks";
import { Capabilities, InstallJob, ModelSummary, V2, errorText, get, loadCapabilities, query, request } from "../api";
import { onEvent } from "../events";
import { Badge, ErrorLine, Progress } from "../widgets";

const FINAL = new Set(["completed", "error", "cancelled"]);
// Config overrides a person may give when the probers cannot tell what a model is (the install error says so).
const OVERRIDES = { type: "ModelType", base: "BaseModelType", format: "ModelFormat" } as const;
type Override = keyof typeof OVERRIDES;

function choices(capabilities: Capabilities | null, schema: string): string[] {
  return (capabilities?.document.components.schemas[schema]?.enum as string[] | undefined) ?? [];
}

export function Models() {
  const [models, setModels] = useState<ModelSummary[] | null>(null);
  const [jobs, setJobs] = useState<InstallJob[]>([]);
  const [source, setSource] = useState("");
  const [inplace, setInplace] = useState(true);
  const [error, setError] = useState<string | null>(null);
  const [overrides, setOverrides] = useState<Record<Override, string>>({ type: "", base: "", format: "" });
  const [capabilities, setCapabilities] = useState<Capabilities | null>(null);

  const reload = useCallback(async () => {
    try {
      const [list, installs] = await Promise.all([get<{ models: ModelSummary[] }>(`${V2}/models`), get<InstallJob[]>(`${V2}/models/install`)]);
      setModels(list.models);
      setJobs(installs);
    } catch (e) {
      setError(errorText(e));
    }
  }, []);

  useEffect(() => {
    void reload();
    void loadCapabilities().then(setCapabilities);
    const progress = onEvent("model_install_download_progress", (data) => {
      setJobs((old) => old.map((j) => (j.id === data.id ? { ...j, status: "downloading", bytes: data.bytes as number, total_bytes: data.total_bytes as number } : j)));
    });
    const names = ["model_install_started", "model_install_complete", "model_install_error", "model_install_cancelled", "model_install_downloads_complete", "events_missed"];
    const stops = names.map((name) => onEvent(name, () => void reload()));
    return () => [progress, ...stops].forEach((stop) => stop());
  }, [reload]);

  const install = async (event: Event) => {
    event.preventDefault();
    setError(null);
    try {
      const body = Object.fromEntries(Object.entries(overrides).filter(([, value]) => value !== ""));
      await request("POST", `${V2}/models/install${query({ source: source.trim(), inplace })}`, body);
      setSource("");
      await reload();
    } catch (e) {
      setError(errorText(e));
    }
  };
  const act = async (method: string, path: string) => {
    try {
      await request(method, path);
      await reload();
    } catch (e) {
      setError(errorText(e));
    }
  };

  return (
    <section class="view models" aria-label="Models">
      <form class="card install" onSubmit={install}>
        <h2>Install a model</h2>
        <input name="source" class="wide" placeholder="a local path, an https:// URL or a Hugging Face repo id (owner/name)" value={source} onInput={(e) => setSource(e.currentTarget.value)} required />
        <label title="Register a local model where it lies instead of copying it into the models folder">
          <input type="checkbox" name="inplace" checked={inplace} onChange={(e) => setInplace(e.currentTarget.checked)} /> in place (local paths)
        </label>
        {(Object.keys(OVERRIDES) as Override[]).map((name) => (
          <label title="Say what the model is when the probers cannot tell">
            {name}{" "}
            <select name={name} value={overrides[name]} onChange={(e) => setOverrides({ ...overrides, [name]: e.currentTarget.value })}>
              <option value="">detect</option>
              {choices(capabilities, OVERRIDES[name]).map((value) => (
                <option value={value}>{value}</option>
              ))}
            </select>
          </label>
        ))}
        <button type="submit" class="primary">
          Install
        </button>
        <ErrorLine error={error} />
      </form>
      {jobs.length > 0 && (
        <div class="card">
          <h2>
            Install jobs{" "}
            <button class="small" onClick={() => void act("DELETE", `${V2}/models/install`)}>
              Forget finished
            </button>
          </h2>
          <ul class="jobs">
            {[...jobs].reverse().map((job) => {
              const status = job.status ?? "waiting";
              const bytes = job.bytes ?? 0;
              return (
              <li data-job={job.id} data-status={status}>
                <Badge kind={status === "completed" ? "completed" : status === "error" ? "failed" : status === "cancelled" ? "canceled" : "in_progress"}>{status}</Badge> <code>{job.source}</code>{" "}
                {!FINAL.has(status) && (
                  <>
                    <Progress value={job.total_bytes ? bytes / job.total_bytes : null} label={status === "downloading" ? `${(bytes / 1e6).toFixed(1)} MB` : status} />
                    <button class="danger small" onClick={() => void act("DELETE", `${V2}/models/install/${job.id}`)}>
                      Cancel
                    </button>
                  </>
                )}
                {job.error && (
                  <div class="error-text">
                    {job.error_type}: {job.error}
                  </div>
                )}
              </li>
              );
            })}
          </ul>
        </div>
      )}
      <h2>
        Installed {models && <span class="muted small">{models.length}</span>}
      </h2>
      {models?.length === 0 && <p class="empty">No models installed yet.</p>}
      <table class="model-table">
        <thead>
          <tr>
            <th>name</th>
            <th>type</th>
            <th>base</th>
            <th>format</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {models?.map((model) => (
            <tr data-model={model.key}>
              <td>
                <strong>{model.name}</strong>
                <div class="small muted">{model.path}</div>
              </td>
              <td>{model.type}</td>
              <td>{model.base}</td>
              <td>{model.format}</td>
              <td>
                <button class="danger" onClick={() => confirm(`Delete ${model.name}?`) && void act("DELETE", `${V2}/models/i/${encodeURIComponent(model.key)}`)}>
                  Delete
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
