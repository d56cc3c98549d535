// schema_keywords.mjs: which JSON-schema keywords node-llama-cpp's grammar
// (createGrammarForJsonSchema) honours.  For each case it builds the grammar
// of {"type": "object", "properties": {"v": CASE}}, shows the GBNF rule the
// value gets, samples a few answers from the model (random weights: the
// grammar alone decides what comes out) and checks them against the keyword.
//
//   node schema_keywords.mjs --model FILE [--samples 6] [--gbnf OUT.txt]
//
// Prints a Markdown table: case, GBNF for the value (abridged), samples,
// and whether every sample kept the keyword.  A keyword whose samples all
// pass may still be unenforced: read the GBNF column too.

import fs from "node:fs";
import {getLlama, LlamaChat} from "node-llama-cpp";

const argv = process.argv.slice(2);
const opt = (name, dflt) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : dflt);
const modelPath = opt("--model");
const nSamples = parseInt(opt("--samples", "6"), 10);
const gbnfOut = opt("--gbnf", null);

const isDate = (s) => typeof s === "string" && /^\d{4}-\d{2}-\d{2}$/.test(s);
const realDate = (s) => isDate(s) && !Number.isNaN(Date.parse(s + "T00:00:00Z")) &&
    new Date(s + "T00:00:00Z").toISOString().slice(0, 10) === s;
const plainInt = (raw) => /^-?(0|[1-9][0-9]*)$/.test(raw);

// [label, schema, check(value, rawText) -> true when the keyword held]
const CASES = [
    ["integer", {type: "integer"}, (v, raw) => plainInt(raw)],
    ["integer minimum 0 maximum 120", {type: "integer", minimum: 0, maximum: 120},
        (v, raw) => plainInt(raw) && v >= 0 && v <= 120],
    ["integer exclusiveMinimum 0 / multipleOf 5", {type: "integer", exclusiveMinimum: 0, multipleOf: 5},
        (v) => v > 0 && v % 5 === 0],
    ["integer enum [1, 2, 3]", {type: "integer", enum: [1, 2, 3]}, (v) => [1, 2, 3].includes(v)],
    ["number", {type: "number"}, (v, raw) => !/[eE]/.test(raw)],
    ["number minimum 0 maximum 1", {type: "number", minimum: 0, maximum: 1}, (v) => v >= 0 && v <= 1],
    ["string maxLength 12", {type: "string", maxLength: 12}, (v) => typeof v === "string" && v.length <= 12],
    ["string minLength 3 maxLength 5", {type: "string", minLength: 3, maxLength: 5},
        (v) => typeof v === "string" && v.length >= 3 && v.length <= 5],
    ["[string, null] maxLength 12", {type: ["string", "null"], maxLength: 12},
        (v) => v === null || v.length <= 12],
    ["oneOf [string maxLength 12, null]", {oneOf: [{type: "string", maxLength: 12}, {type: "null"}]},
        (v) => v === null || (typeof v === "string" && v.length <= 12)],
    ["anyOf [string maxLength 12, null]", {anyOf: [{type: "string", maxLength: 12}, {type: "null"}]},
        (v) => v === null || (typeof v === "string" && v.length <= 12)],
    ["string pattern ^[0-9]{3}$", {type: "string", pattern: "^[0-9]{3}$"}, (v) => /^[0-9]{3}$/.test(v)],
    ["string format date", {type: "string", format: "date"}, (v) => isDate(v)],
    ["  (calendar-valid dates)", {type: "string", format: "date"}, (v) => realDate(v)],
    ["string format date-time", {type: "string", format: "date-time"},
        (v) => typeof v === "string" && /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}/.test(v)],
    ["[string, null] format date", {type: ["string", "null"], format: "date"}, (v) => v === null || isDate(v)],
    ["string format uuid", {type: "string", format: "uuid"},
        (v) => typeof v === "string" && /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(v)],
    ["string enum [paris, rome, oslo]", {type: "string", enum: ["paris", "rome", "oslo"]},
        (v) => ["paris", "rome", "oslo"].includes(v)],
    ["const 5", {const: 5}, (v) => v === 5],
    ["array items integer minItems 2 maxItems 3", {type: "array", items: {type: "integer"}, minItems: 2, maxItems: 3},
        (v) => Array.isArray(v) && v.length >= 2 && v.length <= 3],
    ["array maxItems 0", {type: "array", items: {type: "string"}, maxItems: 0},
        (v) => Array.isArray(v) && v.length === 0],
    ["object required [a] (b optional)", {type: "object", properties: {a: {type: "boolean"}, b: {type: "boolean"}},
        required: ["a"]}, (v) => v != null && "a" in v],
    ["object additionalProperties (default)", {type: "object", properties: {a: {type: "boolean"}}},
        (v) => v != null && Object.keys(v).every((k) => k === "a")],
    ["integer enum 0..120 (121 literals)", {enum: Array.from({length: 121}, (_, i) => i)},
        (v) => Number.isInteger(v) && v >= 0 && v <= 120]
];

function valueRules(gbnf) {
    // the root rule, from the "v" key to the closing brace, and the rules it names
    const lines = gbnf.split("\n");
    const root = lines.find((l) => l.startsWith("root ::=")) ?? "";
    const m = /"\\"v\\"" ":" \[ \]\? (.*?) whitespace-b-0-4-rule "}"/.exec(root);
    const expr = m ? m[1] : root;
    const names = new Set(expr.match(/[a-z0-9-]*rule[0-9]*/g) ?? []);
    const shown = [`v ::= ${expr}`];
    for (const l of lines) {
        const name = l.split(" ::= ")[0];
        if (names.has(name) && !/^(whitespace|comma-whitespace|string-char)-/.test(name))
            shown.push(l);
    }
    return shown.join("; ");
}

const llama = await getLlama({gpu: false, build: "never", maxThreads: 1, logLevel: "error"});
const model = await llama.loadModel({modelPath});
const context = await model.createContext({contextSize: 1024, threads: 1});
const chat = new LlamaChat({contextSequence: context.getSequence()});
const history = [{type: "user", text: "Write the value of v as JSON."}];
const gbnfDump = [];
const rows = [];
for (const [label, schema, ok] of CASES) {
    let grammar;
    try {
        grammar = await llama.createGrammarForJsonSchema({type: "object", properties: {v: schema}});
    } catch (e) {
        rows.push([label, "error: " + String(e.message ?? e).slice(0, 80), "", "error"]);
        continue;
    }
    gbnfDump.push(`## ${label}\n${JSON.stringify(schema)}\n${grammar.grammar}\n`);
    const samples = [];
    let held = 0;
    for (let i = 0; i < nSamples; i++) {
        const r = await chat.generateResponse(history, {grammar, maxTokens: 64, temperature: 1, seed: 100 + i});
        let v, raw;
        try {
            raw = /"v"\s*:\s*([\s\S]*?)\s*}\s*$/.exec(r.response)?.[1] ?? "";
            v = JSON.parse(r.response).v;
        } catch {
            samples.push(r.metadata.stopReason === "maxTokens" ? "(cut at 64 tokens)" : "(not JSON)");
            continue;
        }
        samples.push(raw.length > 24 ? raw.slice(0, 21) + "..." : raw);
        if (ok(v, raw))
            held++;
    }
    const rule = valueRules(grammar.grammar);
    rows.push([label, rule.length > 150 ? rule.slice(0, 147) + "..." : rule,
        samples.join(" "), `${held}/${nSamples}`]);
}
if (gbnfOut)
    fs.writeFileSync(gbnfOut, gbnfDump.join("\n"));
const esc = (s) => String(s).replace(/\|/g, "\\|").replace(/\n/g, " ");
console.log("| case | GBNF of the value (abridged) | samples | kept |");
console.log("|---|---|---|---|");
for (const r of rows)
    console.log("| " + r.map(esc).join(" | ") + " |");
await context.dispose();
await model.dispose();
