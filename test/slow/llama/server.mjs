// server.mjs: an OpenAI-compatible chat server in front of llama.cpp (the
// node-llama-cpp package), for samplellm's slow target (test/slow/llama.sh).
//
// It behaves like llama.cpp's own server with its historical defaults: one
// slot (--slots), the other requests wait first come first served with their
// connection open, 503 "Loading model" until the model is loaded, GET /props
// and GET /slots shaped like llama.cpp's, generation stopped when the client
// disconnects.  It listens on 127.0.0.1 only.
//
//   node server.mjs --model FILE [--port 0] [--port-file F] [--log F]
//                   [--timing-log F] [--slots 1] [--ctx 8192] [--threads 1]
//                   [--n-predict -1] [--alias NAME]
//
// POST /v1/chat/completions: messages, max_tokens / max_completion_tokens,
//   temperature (default 0.8, as llama.cpp), top_p, seed, stream,
//   stream_options.include_usage, response_format {"type": "json_object"} or
//   {"type": "json_schema", "json_schema": {"schema": S}} (S becomes a grammar
//   with node-llama-cpp's createGrammarForJsonSchema).  Other fields are
//   ignored, as llama.cpp does.
// GET /v1/models, /health, /props, /slots.
//
// --log: one JSON line per request when it arrives ({seq, path, method,
// model, received}); --timing-log: one line per chat request when it is over,
// with the simulator's fields (test/llm_sim.py): seq, received, slot, slot_id,
// first_token, done, status, stream, cancelled, cancelled_at, prompt_tokens,
// completion_tokens, generated, plus stopped (when generation really ended:
// after a cancel, the gap to cancelled_at is how long the engine went on) and
// stop_reason.  Times are epoch seconds (float).

import http from "node:http";
import fs from "node:fs";
import path from "node:path";
import {randomBytes} from "node:crypto";
import {getLlama, LlamaChat} from "node-llama-cpp";

const args = parseArgs(process.argv.slice(2), {
    model: null, port: "0", "port-file": null, log: null, "timing-log": null,
    slots: "1", ctx: "8192", threads: "1", "n-predict": "-1", alias: null
});
if (!args.model) {
    console.error("server.mjs: --model FILE is required");
    process.exit(2);
}
const nSlots = Math.max(1, parseInt(args.slots, 10));
const nCtx = parseInt(args.ctx, 10);
const nPredict = parseInt(args["n-predict"], 10);
const alias = args.alias ?? path.basename(args.model);
const logFile = args.log ? fs.openSync(args.log, "a", 0o644) : null;
const timingFile = args["timing-log"] ? fs.openSync(args["timing-log"], "a", 0o644) : null;

let seq = 0;
let llama = null, model = null;
const slots = [];           // {id, chat, job}
const queue = [];           // jobs waiting for a slot, oldest first
const grammars = new Map(); // schema text -> grammar
let nextTask = 0;

function parseArgs(argv, defaults) {
    const out = {...defaults};
    for (let i = 0; i < argv.length; i++) {
        const m = /^--(.+)$/.exec(argv[i]);
        if (!m || !(m[1] in defaults) || i + 1 >= argv.length) {
            console.error(`server.mjs: bad argument ${argv[i]}`);
            process.exit(2);
        }
        out[m[1]] = argv[++i];
    }
    return out;
}

const now = () => Date.now() / 1000;

function writeLine(fd, obj) {
    if (fd != null)
        fs.writeSync(fd, JSON.stringify(obj) + "\n");
}

function sendJson(res, status, obj) {
    const data = Buffer.from(JSON.stringify(obj));
    res.writeHead(status, {"Content-Type": "application/json", "Content-Length": data.length});
    res.end(data);
}

// llama.cpp's error shape: {"error": {"code", "message", "type"}}
function sendError(res, status, message, type = "invalid_request_error") {
    sendJson(res, status, {error: {code: status, message, type}});
}

function readBody(req) {
    return new Promise((resolve, reject) => {
        const chunks = [];
        req.on("data", (c) => chunks.push(c));
        req.on("end", () => resolve(Buffer.concat(chunks)));
        req.on("error", reject);
    });
}

// -- slots and the queue -----------------------------------------------------

function acquire(job) {
    const free = slots.find((s) => s.job == null);
    if (free && queue.length === 0) {
        free.job = job;
        return Promise.resolve(free);
    }
    return new Promise((resolve) => {
        job.grant = resolve;
        queue.push(job);
    });
}

function release(slot) {
    slot.job = null;
    const next = queue.shift();
    if (next) {
        slot.job = next;
        next.grant(slot);
    }
}

function leaveQueue(job) {
    const i = queue.indexOf(job);
    if (i >= 0) {
        queue.splice(i, 1);
        job.grant(null);
    }
}

// -- chat completions --------------------------------------------------------

function toHistory(messages) {
    if (!Array.isArray(messages) || messages.length === 0)
        throw new Error("'messages' must be a non-empty array");
    return messages.map((m) => {
        if (m == null || typeof m !== "object")
            throw new Error("each message must be an object");
        const text = typeof m.content === "string" ? m.content
            : Array.isArray(m.content) ? m.content.map((p) => p?.text ?? "").join("")
                : m.content == null ? "" : null;
        if (text == null)
            throw new Error("message content must be a string or an array of parts");
        if (m.role === "system" || m.role === "developer")
            return {type: "system", text};
        if (m.role === "user")
            return {type: "user", text};
        if (m.role === "assistant")
            return {type: "model", response: [text]};
        throw new Error(`unsupported message role '${m.role}'`);
    });
}

async function grammarFor(format) {
    if (format == null || format.type === "text")
        return undefined;
    if (format.type === "json_object" && format.schema == null)
        return await llama.getGrammarFor("json");
    const schema = format.type === "json_schema" ? (format.json_schema?.schema ?? format.schema)
        : format.schema;
    if (schema == null || typeof schema !== "object")
        throw new Error("response_format has no schema");
    const key = JSON.stringify(schema);
    if (!grammars.has(key))
        grammars.set(key, await llama.createGrammarForJsonSchema(schema));
    return grammars.get(key);
}

function slotParams(body, stream) {
    const num = (v, d) => (typeof v === "number" ? v : d);
    return {
        n_predict: nPredict, seed: num(body.seed, 4294967295), temperature: num(body.temperature, 0.8),
        top_k: 40, top_p: num(body.top_p, 0.95), min_p: 0.05,
        max_tokens: num(body.max_completion_tokens ?? body.max_tokens, -1), stream,
        n_probs: 0, grammar: ""
    };
}

async function chatCompletion(req, res, rec) {
    let body;
    try {
        body = JSON.parse((await readBody(req)).toString("utf8"));
    } catch {
        rec.status = 400;
        return sendError(res, 400, "the request body is not JSON");
    }
    writeLine(logFile, {seq: rec.seq, path: req.url, method: req.method,
        model: body?.model ?? null, received: rec.received});
    if (body == null || typeof body !== "object" || Array.isArray(body)) {
        rec.status = 400;
        return sendError(res, 400, "the request body must be a JSON object");
    }
    const stream = body.stream === true;
    const includeUsage = stream && body.stream_options?.include_usage === true;
    rec.stream = stream;
    let history, grammar;
    try {
        history = toHistory(body.messages);
        grammar = await grammarFor(body.response_format);
    } catch (e) {
        rec.status = 400;
        return sendError(res, 400, String(e.message ?? e));
    }
    const limit = body.max_completion_tokens ?? body.max_tokens;
    const maxTokens = Number.isInteger(limit) && limit > 0 ? limit : (nPredict > 0 ? nPredict : undefined);

    // Wait for a slot; a client that leaves meanwhile leaves the queue.
    const controller = new AbortController();
    const job = {rec, params: slotParams(body, stream), nDecoded: 0, idTask: -1};
    let gone = false;
    res.on("close", () => {
        if (res.writableEnded)
            return;
        gone = true;
        rec.cancelled = true;
        rec.cancelled_at = now();
        controller.abort(new Error("client disconnected"));
        leaveQueue(job);
    });
    const slot = await acquire(job);
    if (slot == null || gone) {
        if (slot)
            release(slot);
        return;
    }
    job.idTask = nextTask++;
    rec.slot = now();
    rec.slot_id = slot.id;
    const id = "chatcmpl-" + randomBytes(12).toString("hex");
    const created = Math.floor(Date.now() / 1000);
    const chunk = (choices, extra = {}) => ({
        id, object: "chat.completion.chunk", created, model: alias,
        system_fingerprint: "b0-node-llama-cpp", choices, ...extra
    });
    const sse = (obj) => res.write("data: " + (typeof obj === "string" ? obj : JSON.stringify(obj)) + "\n\n");
    let promptTokens = 0;
    try {
        const state = slot.chat.chatWrapper.generateContextState({chatHistory: history});
        promptTokens = state.contextText.tokenize(model.tokenizer).length;
    } catch {
        promptTokens = 0;
    }
    rec.prompt_tokens = promptTokens;
    let generated = 0, text = "", started = false;
    let result;
    try {
        result = await slot.chat.generateResponse(history, {
            grammar, maxTokens, signal: controller.signal, stopOnAbortSignal: true,
            temperature: typeof body.temperature === "number" ? body.temperature : 0.8,
            topP: typeof body.top_p === "number" ? body.top_p : undefined,
            seed: Number.isInteger(body.seed) ? body.seed : undefined,
            onToken(tokens) {
                generated += tokens.length;
                job.nDecoded = generated;
                if (rec.first_token == null)
                    rec.first_token = now();
            },
            onTextChunk(piece) {
                text += piece;
                if (!stream || gone || piece === "")
                    return;
                if (!started) {
                    // headers with the first piece, as llama.cpp and Ollama do:
                    // a queued or prompt-processing request sends no byte
                    started = true;
                    res.writeHead(200, {"Content-Type": "text/event-stream",
                        "Cache-Control": "no-cache"});
                    sse(chunk([{index: 0, delta: {role: "assistant", content: null},
                        logprobs: null, finish_reason: null}]));
                }
                sse(chunk([{index: 0, delta: {content: piece}, logprobs: null, finish_reason: null}]));
            }
        });
    } catch (e) {
        rec.stopped = now();
        rec.generated = generated;
        if (gone)
            return release(slot);
        release(slot);
        rec.status = 500;
        if (started)
            return res.end();
        return sendError(res, 500, String(e.message ?? e), "server_error");
    }
    rec.stopped = now();
    rec.generated = generated;
    rec.completion_tokens = generated;
    rec.stop_reason = result.metadata.stopReason;
    release(slot);
    if (gone)
        return;
    const finish = result.metadata.stopReason === "maxTokens" ? "length" : "stop";
    const usage = {prompt_tokens: promptTokens, completion_tokens: generated,
        total_tokens: promptTokens + generated};
    const genMs = rec.first_token != null ? (rec.stopped - rec.first_token) * 1000 : 0;
    const timings = {
        prompt_n: promptTokens, prompt_ms: rec.first_token != null ? (rec.first_token - rec.slot) * 1000 : 0,
        predicted_n: generated, predicted_ms: genMs,
        predicted_per_second: genMs > 0 ? generated / (genMs / 1000) : 0
    };
    rec.status = 200;
    if (stream) {
        if (!started) {
            res.writeHead(200, {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"});
            sse(chunk([{index: 0, delta: {role: "assistant", content: null}, logprobs: null,
                finish_reason: null}]));
        }
        sse(chunk([{index: 0, delta: {}, logprobs: null, finish_reason: finish}],
            includeUsage ? {} : {timings}));
        if (includeUsage)
            sse(chunk([], {usage, timings}));
        sse("[DONE]");
        res.end();
    } else {
        sendJson(res, 200, {
            id, object: "chat.completion", created, model: alias,
            system_fingerprint: "b0-node-llama-cpp",
            choices: [{index: 0, message: {role: "assistant", content: result.response},
                logprobs: null, finish_reason: finish}],
            usage, timings
        });
    }
    rec.done = now();
}

// -- discovery (shapes of llama.cpp's tools/server/README.md) ----------------

function slotDoc(slot) {
    const job = slot.job;
    return {
        id: slot.id, id_task: job ? job.idTask : -1, n_ctx: nCtx, speculative: false,
        is_processing: job != null, params: job ? job.params : slotParams({}, true),
        next_token: {has_next_token: job != null, has_new_line: false, n_remain: -1,
            n_decoded: job ? job.nDecoded : 0}
    };
}

function props() {
    return {
        default_generation_settings: {...slotDoc({id: 0, job: null}), prompt: ""},
        total_slots: nSlots, model_path: args.model,
        chat_template: model.fileInfo?.metadata?.tokenizer?.chat_template ?? "",
        chat_template_caps: {}, modalities: {vision: false, audio: false},
        build_info: "node-llama-cpp", is_sleeping: false
    };
}

function models() {
    return {
        object: "list", data: [{
            id: alias, object: "model", created: Math.floor(Date.now() / 1000), owned_by: "llamacpp",
            meta: model ? {n_vocab: model.fileInfo?.metadata?.llama?.vocab_size ?? null,
                n_ctx_train: model.trainContextSize, size: model.size} : null
        }]
    };
}

const server = http.createServer(async (req, res) => {
    const received = now();
    const url = new URL(req.url, "http://127.0.0.1");
    try {
        if (model == null) {
            await readBody(req);
            writeLine(logFile, {seq: ++seq, path: req.url, method: req.method, model: null, received});
            return sendJson(res, 503, {error: {code: 503, message: "Loading model", type: "unavailable_error"}});
        }
        if (req.method === "POST" && url.pathname === "/v1/chat/completions") {
            const rec = {seq: ++seq, received, stream: false, slot: null, slot_id: null,
                first_token: null, done: null, status: null, cancelled: false, cancelled_at: null,
                prompt_tokens: null, completion_tokens: null, generated: null, stopped: null,
                stop_reason: null};
            try {
                await chatCompletion(req, res, rec);
            } finally {
                writeLine(timingFile, rec);
            }
            return;
        }
        await readBody(req);
        writeLine(logFile, {seq: ++seq, path: req.url, method: req.method, model: null, received});
        if (req.method === "GET" && (url.pathname === "/health" || url.pathname === "/v1/health"))
            return sendJson(res, 200, {status: "ok"});
        if (req.method === "GET" && (url.pathname === "/v1/models" || url.pathname === "/models"))
            return sendJson(res, 200, models());
        if (req.method === "GET" && url.pathname === "/props")
            return sendJson(res, 200, props());
        if (req.method === "GET" && url.pathname === "/slots") {
            const docs = slots.map(slotDoc);
            if (url.searchParams.get("fail_on_no_slot") === "1" && docs.every((d) => d.is_processing))
                return sendError(res, 503, "no slot available", "unavailable_error");
            return sendJson(res, 200, docs);
        }
        sendError(res, 404, "File Not Found", "not_found_error");
    } catch (e) {
        if (!res.headersSent)
            sendError(res, 500, String(e.message ?? e), "server_error");
        else
            res.end();
    }
});
server.keepAliveTimeout = 60000;
server.requestTimeout = 0;          // generation can take minutes, like llama.cpp's 3600 s

server.listen(parseInt(args.port, 10), "127.0.0.1", async () => {
    const port = server.address().port;
    if (args["port-file"]) {
        const tmp = `${args["port-file"]}.tmp.${process.pid}`;
        fs.writeFileSync(tmp, `${port}\n`, {mode: 0o644});
        fs.renameSync(tmp, args["port-file"]);
    }
    console.log(`listening on 127.0.0.1:${port} (loading ${args.model})`);
    const t0 = Date.now();
    const threads = Math.max(1, parseInt(args.threads, 10));
    llama = await getLlama({gpu: false, build: "never", maxThreads: threads, logLevel: "warn"});
    const m = await llama.loadModel({modelPath: args.model});
    const context = await m.createContext({contextSize: nCtx * nSlots, sequences: nSlots, threads});
    for (let i = 0; i < nSlots; i++)
        slots.push({id: i, job: null, chat: new LlamaChat({contextSequence: context.getSequence()})});
    model = m;
    console.log(`model loaded in ${Date.now() - t0} ms (${nSlots} slot(s), n_ctx ${nCtx}, ${threads} thread(s))`);
});

for (const sig of ["SIGTERM", "SIGINT"])
    process.on(sig, () => {
        server.close();
        process.exit(0);
    });
