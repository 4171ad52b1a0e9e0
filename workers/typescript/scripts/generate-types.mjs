#!/usr/bin/env node
// Writes src/protocol.ts, the TypeScript types of the task protocol, from the JSON
// Schema the Python types give (docs/protocol.schema.json): one exported type per
// $def. With --check it writes nothing and exits 1 when src/protocol.ts differs
// from what the schema gives (the schema changed and the types were not regenerated).
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { compile } from "json-schema-to-typescript";

const here = dirname(fileURLToPath(import.meta.url));
const schemaPath = join(here, "..", "..", "..", "docs", "protocol.schema.json");
const outPath = join(here, "..", "src", "protocol.ts");

const BANNER = `/* eslint-disable */
// The messages of the Cerebelum task protocol.
// generated from docs/protocol.schema.json by npm run generate; do not edit`;

const SHAPE_KEYS = ["type", "$ref", "anyOf", "oneOf", "allOf", "enum", "const", "properties", "items"];

/** The schema made ready for the generator, in place. */
function prepare(node) {
  if (Array.isArray(node)) {
    node.forEach(prepare);
    return node;
  }
  if (node === null || typeof node !== "object") return node;
  for (const value of Object.values(node)) prepare(value);
  for (const key of ["properties", "$defs"]) {
    if (!node[key]) continue;
    for (const [name, sub] of Object.entries(node[key])) {
      // a payload (any JSON: msgspec's Raw) is a schema that says nothing of its shape
      if (!SHAPE_KEYS.some((k) => k in sub)) node[key][name] = { ...sub, tsType: "unknown" };
      // a $ref with a description beside it would be emitted as a second copy of
      // the type it names (ErrorInfo1): the reference alone names the type itself
      else if ("$ref" in sub) node[key][name] = { $ref: sub.$ref };
    }
  }
  return node;
}

export async function generate() {
  const schema = JSON.parse(readFileSync(schemaPath, "utf8"));
  const defs = prepare(structuredClone(schema.$defs ?? {}));
  const names = Object.keys(defs).sort();
  // the schema's top level has no properties: a wrapper whose properties name every
  // $def makes each one reachable, so that each is emitted under its own name
  const wrapper = {
    title: "ProtocolMessages",
    description: schema.description,
    type: "object",
    additionalProperties: false,
    properties: Object.fromEntries(names.map((n) => [n, { $ref: `#/$defs/${n}` }])),
    required: names,
    $defs: defs,
  };
  let ts = await compile(wrapper, "ProtocolMessages", {
    bannerComment: BANNER,
    // what the engine sends may gain fields: a worker reads the ones it knows and
    // ignores the rest, so the types describe only those the schema has
    additionalProperties: false,
    ignoreMinAndMaxItems: true,
    unknownAny: true,
    enableConstEnums: false,
    format: true,
    style: { bracketSpacing: true, printWidth: 100, semi: true, singleQuote: false, tabWidth: 2, trailingComma: "all" },
  });
  return ts.endsWith("\n") ? ts : ts + "\n";
}

const check = process.argv.includes("--check");
const ts = await generate();
if (check) {
  let current = "";
  try {
    current = readFileSync(outPath, "utf8");
  } catch {
    // missing: it differs
  }
  if (current !== ts) {
    console.error(
      "src/protocol.ts does not match docs/protocol.schema.json: run `npm run generate` and commit it",
    );
    process.exit(1);
  }
  console.log("src/protocol.ts matches docs/protocol.schema.json");
} else {
  writeFileSync(outPath, ts);
  console.log(`wrote ${outPath}`);
}
