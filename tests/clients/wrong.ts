// Mistakes the generated types must catch: tests/test_generated_clients.py expects tsc --strict to refuse each.
import type { components } from "./schema";

type Schemas = components["schemas"];

// A node type no pack registered.
export const unknownNode: Schemas["Graph"] = { nodes: { n: { id: "n", type: "no_such_node" } } };

// A string where the node takes an integer.
export const wrongField: Schemas["Graph"] = { nodes: { n: { id: "n", type: "integer", value: "two" } } };

// A field the output of that type does not have.
export function notAField(message: Schemas["AnyEventMessage"]): string {
  if (message.event === "invocation_complete" && message.data.result.type === "integer_output") {
    return message.data.result.image.image_name;
  }
  return "";
}
