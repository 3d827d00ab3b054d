// TypeScript types of protocol v1, generated from its JSON Schema:
//
//   python manage.py dagstream_schema | node tests/js/gen-protocol-types.mjs \
//     > dagstream_app/static/dagstream_app/client/protocol.d.ts
//
// (`npm run types` in tests/js does the same.) tests/test_js_client.py regenerates
// the file and fails when the committed one differs.
import { text } from "node:stream/consumers";
import { compile } from "json-schema-to-typescript";

const BANNER = `/**
 * dagstream protocol v1, every message as a TypeScript type.
 *
 * Generated from \`manage.py dagstream_schema\` (dagstream_app/protocol.py) by
 * tests/js/gen-protocol-types.mjs: do not edit by hand.
 */`;

// Entry points of the schema, declared as named unions.
const UNIONS = {
  server_event: "ServerEvent",
  client_command: "ClientCommand",
  server_reply: "ServerReply",
};

const KEYWORDS = ["type", "enum", "const", "anyOf", "oneOf", "allOf", "$ref", "properties"];

/** msgspec's schema, made exact for TypeScript. */
function tighten(node) {
  if (Array.isArray(node)) return node.map(tighten);
  if (node === null || typeof node !== "object") return node;
  const out = Object.fromEntries(Object.entries(node).map(([k, v]) => [k, tighten(v)]));
  // A struct lists its fields: no others (msgspec omits the keyword for structs
  // that accept unknown fields on decode, but never sends any).
  if (out.properties && !("additionalProperties" in out)) out.additionalProperties = false;
  if (out.properties) {
    for (const [name, field] of Object.entries(out.properties)) {
      // An `Any` field (output, results): any JSON value.
      if (!KEYWORDS.some((k) => k in field)) out.properties[name] = { ...field, tsType: "unknown" };
    }
  }
  return out;
}

// json-schema-to-typescript declares unreferenced definitions (the commands)
// only from "definitions": move msgspec's "$defs" there.
const schema = JSON.parse((await text(process.stdin)).replaceAll('"#/$defs/', '"#/definitions/'));
const defs = { ...schema.$defs };
for (const [entry, name] of Object.entries(UNIONS)) {
  defs[name] = { title: name, ...schema.properties[entry] };
}
defs.ServerMessage = {
  title: "ServerMessage",
  description: "Anything the server sends: an event of the DAG, or a reply to this connection.",
  anyOf: [{ $ref: "#/definitions/ServerEvent" }, { $ref: "#/definitions/ServerReply" }],
};
// Only an object schema gets its unreferenced definitions declared: a root that
// names the two directions, dropped from the output below.
const root = tighten({
  title: "Root",
  type: "object",
  properties: {
    server: { $ref: "#/definitions/ServerMessage" },
    client: { $ref: "#/definitions/ClientCommand" },
  },
  definitions: defs,
});
const body = await compile(root, "Root", {
  bannerComment: BANNER,
  unreachableDefinitions: true,
  strictIndexSignatures: true,
  format: true,
  style: { printWidth: 100 },
});
const cleaned = body
  .replace(/\nexport interface Root \{\n[^}]*\}\n/, "\n")
  // json-schema-to-typescript notes where each definition came from: noise here.
  .replace(
    /\n \*\n \* This interface was referenced by `Root`'s JSON-Schema\n \* via the `definition` "\w+"\./g,
    "",
  )
  .replace(
    /\/\*\*\n \* This interface was referenced by `Root`'s JSON-Schema\n \* via the `definition` "\w+"\.\n \*\/\n/g,
    "",
  );
process.stdout.write(
  `${cleaned}
/** The client's commands (the issue's name for them). */
export type ClientEvent = ClientCommand;
/** The message types the server sends, and the command types. */
export type ServerMessageType = ServerMessage["type"];
export type ClientCommandType = ClientCommand["type"];
/** The values of the protocol's enumerations. */
export type NodeStatus = NodeView["status"];
export type ExecutionStatus = DagSnapshot["status"];
export type GateStatus = GateView["status"];
export type Decision = HumanDecision["decision"];
export type ErrorCode = ErrorReply["code"];
/** A command's \`id\`: a string of at most 100 characters, or a 64-bit integer. */
export type CommandId = string | number;
`,
);
