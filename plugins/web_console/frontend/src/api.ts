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

/** An error answer: the server's `detail` is meant for a person, so it is shown as it is. */
export class ApiError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

export async function request<T>(method: string, path: string, body?: unknown, form?: FormData): Promise<T> {
  const init: RequestInit = { method, headers: {} };
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
    try {
      const parsed = JSON.parse(text) as { detail?: string };
      if (typeof parsed.detail === "string") detail = parsed.detail;
    } catch {
      // not JSON: the text itself is the message
    }
    throw new ApiError(response.status, `${method} ${path}: ${response.status} ${detail}`);
  }
  return (text ? JSON.parse(text) : null) as T;
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
