// The console's only way to the server: the public HTTP API, typed from our OpenAPI document
// (generated/openapi.d.ts is made by openapi-typescript in scripts/build-console).
import type { components } from "./generated/openapi";

export type Schemas = components["schemas"];
export type ImageDTO = Schemas["ImageDTO"];
export type ImageDTOPage = Schemas["ImageDTOPage"];
export type QueueItemSummary = Schemas["QueueItemSummary"];
export type QueueItemPage = Schemas["QueueItemPage"];
export type QueueItemView = Schemas["QueueItemView"];
export type QueueAndProcessor = Schemas["SessionQueueAndProcessorStatus"];
export type PluginInfo = Schemas["PluginInfo"];
export type InstallJob = Schemas["InstallJob"];
export type ImageCategory = Schemas["ImageCategory"];
export type EnqueueBatchBody = Schemas["EnqueueBatchBody"];

/** A model record as the list returns it: the union's common fields are all the console reads. */
export interface ModelSummary {
  key: string;
  name: string;
  type: string;
  base: string;
  format: string;
  path?: string;
  description?: string | null;
}

export const QUEUE_ID = "default";
export const V1 = "/api/v1";
export const V2 = "/api/v2";

/** An error answer: the server's `detail` is meant for a person, so it is shown as it is; `errors` are the
 * per-field problems a 422 carries (`extra.errors`). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly detail: string = message,
    readonly errors: Record<string, unknown>[] = [],
  ) {
    super(message);
  }
}

// The access token of a server that needs one (docs/security.md): asked for in the page, kept for this tab only
// (sessionStorage), sent as a header on every fetch and as a subprotocol on the websocket, never in a URL.
const TOKEN_KEY = "invoke-host.token";

export function accessToken(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setAccessToken(token: string | null): void {
  if (token === null) sessionStorage.removeItem(TOKEN_KEY);
  else sessionStorage.setItem(TOKEN_KEY, token);
}

const tokenListeners = new Set<(detail: string) => void>();

/** Called with the server's message when it answers 401: the shell then asks for the token again. */
export function onTokenRefused(listener: (detail: string) => void): () => void {
  tokenListeners.add(listener);
  return () => tokenListeners.delete(listener);
}

export function authHeaders(): Record<string, string> {
  const token = accessToken();
  return token === null ? {} : { authorization: `Bearer ${token}` };
}

export async function request<T>(method: string, path: string, body?: unknown, form?: FormData): Promise<T> {
  const init: RequestInit = { method, headers: authHeaders() };
  if (form !== undefined) {
    init.body = form;
  } else if (body !== undefined) {
    init.body = JSON.stringify(body);
    (init.headers as Record<string, string>)["content-type"] = "application/json";
  }
  const response = await fetch(path, init);
  const text = await response.text();
  if (!response.ok) {
    let detail = text || response.statusText;
    let errors: Record<string, unknown>[] = [];
    try {
      const parsed = JSON.parse(text) as { detail?: string; extra?: { errors?: Record<string, unknown>[] } };
      if (typeof parsed.detail === "string") detail = parsed.detail;
      if (Array.isArray(parsed.extra?.errors)) errors = parsed.extra.errors;
    } catch {
      // not JSON: the text itself is the message
    }
    if (response.status === 401) for (const listener of tokenListeners) listener(detail);
    throw new ApiError(response.status, `${method} ${path}: ${response.status} ${detail}`, detail, errors);
  }
  return (text ? JSON.parse(text) : null) as T;
}

/** A file of the API (an image) as a blob, fetched with the token's header. */
export async function fetchBlob(path: string): Promise<Blob> {
  const response = await fetch(path, { headers: authHeaders() });
  if (!response.ok) throw new ApiError(response.status, `GET ${path}: ${response.status} ${response.statusText}`);
  return response.blob();
}

export const get = <T>(path: string): Promise<T> => request<T>("GET", path);

export function query(params: Record<string, string | number | boolean | undefined | null>): string {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(name, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

export const queuePath = (rest: string): string => `${V1}/queue/${QUEUE_ID}${rest}`;

/** What the server's OpenAPI document says it can do: optional operations are looked up by operation id. */
export interface Capabilities {
  document: OpenApiDocument;
  operation(operationId: string): { method: string; path: string; body: unknown } | null;
}

export interface OpenApiDocument {
  paths: Record<string, Record<string, { operationId?: string; requestBody?: { content?: Record<string, { schema?: unknown }> } }>>;
  components: { schemas: Record<string, JsonSchema> };
}

export interface JsonSchema {
  type?: string | string[];
  title?: string;
  description?: string;
  default?: unknown;
  enum?: unknown[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  $ref?: string;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  items?: JsonSchema;
  field_kind?: string;
  input?: string;
  ui_hidden?: boolean;
  [extra: string]: unknown;
}

let capabilities: Promise<Capabilities> | null = null;

export function loadCapabilities(): Promise<Capabilities> {
  capabilities ??= get<OpenApiDocument>("/schema/openapi.json").then((document) => ({
    document,
    operation(operationId: string) {
      for (const [path, operations] of Object.entries(document.paths)) {
        for (const [method, operation] of Object.entries(operations)) {
          if (operation.operationId === operationId) {
            const body = operation.requestBody?.content?.["application/json"]?.schema ?? null;
            return { method: method.toUpperCase(), path, body };
          }
        }
      }
      return null;
    },
  }));
  return capabilities;
}

/** A short readable form of a JSON schema type, for the node field lists. */
export function schemaType(schema: JsonSchema, document: OpenApiDocument): string {
  if (schema.$ref) return schema.$ref.split("/").pop() ?? schema.$ref;
  const alternatives = schema.anyOf ?? schema.oneOf;
  if (alternatives) return alternatives.map((s) => schemaType(s, document)).join(" | ");
  if (schema.enum) return schema.enum.map((v) => JSON.stringify(v)).join(" | ");
  if (schema.type === "array" && schema.items) return `${schemaType(schema.items, document)}[]`;
  if (Array.isArray(schema.type)) return schema.type.join(" | ");
  return schema.type ?? "any";
}

export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
