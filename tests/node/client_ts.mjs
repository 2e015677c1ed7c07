#!/usr/bin/env node
// Client-matrix driver for the TypeScript MCP SDK (@modelcontextprotocol/sdk, pinned in
// package.json): `Client` over `StreamableHTTPClientTransport`, the 2025-11-25 handshake era.
//
// Same command line, steps and one-line JSON output as tests/py/client_common.py (read its
// docstring): DRIVER --url URL [--token T] [--elicit none|accept|decline] [--mode M]
//                   [--timeout S] [--step-timeout S] STEPS
// `--mode` is accepted and ignored (this SDK has one era). The raw tools/list messages come
// from a fetch wrapper that tees every response body.

import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport, StreamableHTTPError } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { ElicitRequestSchema, McpError } from "@modelcontextprotocol/sdk/types.js";

const ACTION_TOKEN_META_KEY = "fastmcp/action_token";
const TEXT_KEEP = 2000;
const SDK_VERSION = JSON.parse(readFileSync(new URL("./node_modules/@modelcontextprotocol/sdk/package.json", import.meta.url), "utf8")).version;
const RPC_OF = {
  list_tools: "tools/list", call: "tools/call", list_resources: "resources/list",
  read_resource: "resources/read", list_prompts: "prompts/list", get_prompt: "prompts/get", ping: "ping",
};

function parseArgs(argv) {
  const a = { url: null, token: "", elicit: "none", mode: "auto", timeout: 90, stepTimeout: 20, steps: null };
  for (let i = 0; i < argv.length; i++) {
    const [k, inline] = argv[i].includes("=") && argv[i].startsWith("--") ? argv[i].split(/=(.*)/s) : [argv[i], undefined];
    const val = () => (inline !== undefined ? inline : argv[++i]);
    if (k === "--url") a.url = val();
    else if (k === "--token") a.token = val();
    else if (k === "--elicit") a.elicit = val();
    else if (k === "--mode") a.mode = val();
    else if (k === "--timeout") a.timeout = Number(val());
    else if (k === "--step-timeout") a.stepTimeout = Number(val());
    else if (a.steps === null) a.steps = argv[i];
    else throw new Error(`unexpected argument ${argv[i]}`);
  }
  if (!a.url || a.steps === null) throw new Error("usage: client_ts.mjs --url URL [...] STEPS");
  const raw = a.steps.startsWith("@") ? readFileSync(a.steps.slice(1), "utf8") : a.steps;
  a.steps = JSON.parse(raw);
  if (!["none", "accept", "decline"].includes(a.elicit)) throw new Error("--elicit none|accept|decline");
  return a;
}

const args = parseArgs(process.argv.slice(2));
const exchanges = [];
const state = { answer: args.elicit, elicited: [], progress: [] };

// ------------------------------------------------------------------ HTTP recording

async function teeFetch(url, init) {
  const res = await fetch(url, init);
  let rpc = null, id = null;
  try {
    const body = typeof init?.body === "string" ? JSON.parse(init.body) : null;
    if (body && !Array.isArray(body)) { rpc = body.method ?? null; id = body.id ?? null; }
  } catch { /* not JSON */ }
  const rec = {
    http_method: (init?.method ?? "GET").toUpperCase(), rpc, id, status: res.status,
    content_type: (res.headers.get("content-type") ?? "").toLowerCase(),
    www_authenticate: res.headers.get("www-authenticate"), body: "",
  };
  exchanges.push(rec);
  if (!res.body || [101, 204, 205, 304].includes(res.status)) return res;
  const [mine, theirs] = res.body.tee();
  rec.done = (async () => {
    const dec = new TextDecoder();
    try {
      for await (const chunk of mine) rec.body += dec.decode(chunk, { stream: true });
      rec.body += dec.decode();
    } catch { /* the client closed its branch */ }
  })();
  return new Response(theirs, { status: res.status, statusText: res.statusText, headers: res.headers });
}

function statusOf(since, rpc) {
  const wanted = rpc === "connect" ? ["initialize", "server/discover"] : [rpc];
  for (let i = exchanges.length - 1; i >= since; i--) {
    const r = exchanges[i];
    if (r.http_method === "POST" && (rpc == null || wanted.includes(r.rpc))) return r.status;
  }
  return null;
}

function lastError(since) {
  for (let i = exchanges.length - 1; i >= since; i--) if (exchanges[i].status >= 400) return exchanges[i];
  return null;
}

function messagesOf(text, contentType) {
  if (!contentType.startsWith("text/event-stream")) return [text];
  const out = [];
  let data = [];
  for (const line of text.replace(/\r\n/g, "\n").split("\n")) {
    if (line === "") { if (data.length) out.push(data.join("\n")); data = []; }
    else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
  }
  if (data.length) out.push(data.join("\n"));
  return out;
}

async function rawMessages(since, rpc) {
  const recs = exchanges.slice(since).filter((rec) => rec.rpc === rpc && rec.id != null);
  // The tee reads its branch concurrently with the SDK: let it reach the end of each body
  // (a POST's response stream ends after its response), bounded.
  await bounded(Promise.all(recs.map((rec) => rec.done)), 5).catch(() => {});
  const out = [];
  for (const rec of recs) {
    for (const msg of messagesOf(rec.body, rec.content_type)) {
      try {
        const m = JSON.parse(msg);
        if (m && m.id === rec.id && "result" in m) out.push(msg);
      } catch { /* partial */ }
    }
  }
  return out;
}

// ------------------------------------------------------------------ results

function textResult(text) {
  return { text: text.slice(0, TEXT_KEEP), text_len: [...text].length, text_sha256: createHash("sha256").update(text, "utf8").digest("hex") };
}

function metaServer(meta) {
  const info = meta?.["io.modelcontextprotocol/serverInfo"];
  return info && typeof info === "object" ? (info.name ?? null) : (info ?? null);
}

function textOf(content) {
  return (content ?? []).filter((c) => c.type === "text").map((c) => c.text ?? "").join("");
}

function classify(err, since) {
  const rec = lastError(since);
  if (err instanceof McpError) {
    const out = { ok: false, kind: "jsonrpc", code: err.code, message: err.message.replace(/^MCP error -?\d+: /, ""), data: err.data ?? null };
    if (rec) { out.status = rec.status; out.www_authenticate = rec.www_authenticate; }
    return out;
  }
  const status = err instanceof StreamableHTTPError && err.code > 0 ? err.code : rec?.status;
  if (status != null) {
    return {
      ok: false, kind: "http", status, message: `${err?.name ?? "Error"}: ${err?.message ?? err}`.slice(0, 1000),
      body: rec ? rec.body.slice(0, 1000) : "", www_authenticate: rec?.www_authenticate ?? null,
    };
  }
  return { ok: false, kind: "exception", type: err?.name ?? typeof err, message: String(err?.message ?? err).slice(0, 1000) };
}

class Timeout extends Error {}

function bounded(promise, seconds) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => { timer = setTimeout(() => reject(new Timeout(`no answer within ${seconds}s`)), seconds * 1000); }),
  ]).finally(() => clearTimeout(timer));
}

// ------------------------------------------------------------------ the client

async function open() {
  const capabilities = args.elicit !== "none" ? { elicitation: { form: {} } } : {};
  const client = new Client({ name: "fastmcp-matrix-ts", version: "0" }, { capabilities });
  if (args.elicit !== "none") {
    client.setRequestHandler(ElicitRequestSchema, async (req) => {
      state.elicited.push(req.params?.message ?? "");
      return state.answer === "accept" ? { action: "accept", content: { confirm: true } } : { action: "decline" };
    });
  }
  const headers = args.token ? { Authorization: `Bearer ${args.token}` } : {};
  const transport = new StreamableHTTPClientTransport(new URL(args.url), { requestInit: { headers }, fetch: teeFetch });
  await client.connect(transport, { timeout: args.stepTimeout * 1000 });
  return { client, transport };
}

const opts = () => ({ timeout: args.stepTimeout * 1000 });

async function runStep(h, step, results, ctx) {
  const c = h.client;
  switch (step.op) {
    case "list_tools": {
      const since = exchanges.length;
      const names = [], objects = [];
      let cursor;
      for (let n = 0; n < 100; n++) {
        const page = await c.listTools(cursor ? { cursor } : undefined, opts());
        for (const t of page.tools) { names.push(t.name); objects.push(t); }
        cursor = page.nextCursor;
        if (!cursor) break;
      }
      const raw = await rawMessages(since, "tools/list");
      return { ok: true, tools: names, tool_objects: objects, raw: raw.length ? raw : null };
    }
    case "call": {
      const callArgs = step.args_file ? JSON.parse(readFileSync(step.args_file, "utf8")) : (step.args ?? {});
      const meta = { ...(step.meta ?? {}) };
      let token = step.action_token;
      if (step.action_token_from !== undefined) {
        token = results[step.action_token_from]?.data?.action_token;
        if (!token) return { ok: false, kind: "exception", type: "NoActionToken", message: `step ${step.action_token_from} carried no data.action_token` };
      }
      if (token != null) meta[ACTION_TOKEN_META_KEY] = token;
      state.progress = [];
      const params = { name: step.name, arguments: callArgs };
      if (Object.keys(meta).length) params._meta = meta;
      const o = opts();
      if (step.progress) o.onprogress = (p) => state.progress.push({ progress: p.progress, total: p.total ?? null });
      const r = await c.callTool(params, undefined, o);
      const out = { ok: true, is_error: Boolean(r.isError), ...textResult(textOf(r.content)), structured: r.structuredContent ?? null, meta_server: metaServer(r._meta) };
      if (step.progress) out.progress = [...state.progress];
      return out;
    }
    case "list_resources": {
      const r = await c.listResources(undefined, opts());
      ctx.lastUris = r.resources.map((x) => x.uri);
      return { ok: true, uris: ctx.lastUris };
    }
    case "read_resource": {
      let uri = step.uri;
      if (uri == null && step.first) {
        if (!ctx.lastUris.length) return { ok: false, kind: "exception", type: "NoResource", message: "no listed resource" };
        uri = ctx.lastUris[0];
      }
      const r = await c.readResource({ uri }, opts());
      return { ok: true, uri, contents: r.contents.map((x) => ({ uri: x.uri, mime: x.mimeType ?? null, text_len: (x.text ?? "").length })) };
    }
    case "list_prompts": {
      const r = await c.listPrompts(undefined, opts());
      return { ok: true, prompts: r.prompts.map((p) => p.name) };
    }
    case "get_prompt": {
      const r = await c.getPrompt({ name: step.name, arguments: step.args ?? {} }, opts());
      return { ok: true, messages: r.messages.map((m) => m.content?.text ?? "") };
    }
    case "ping":
      await c.ping(opts());
      return { ok: true };
    default:
      return { ok: false, kind: "exception", type: "BadStep", message: `unknown op ${step.op}` };
  }
}

const results = new Array(args.steps.length).fill(null);
let connect = null;
let sessions = 0;
let printed = false;

function emit(extra = {}) {
  if (printed) return;
  printed = true;
  const steps = results.map((r) => r ?? { ok: false, kind: "timeout", message: "run deadline" });
  const out = { client: "ts-sdk", version: SDK_VERSION, connect: connect ?? { ok: false, kind: "timeout", message: "run deadline" }, steps, sessions, ...extra };
  process.stdout.write(JSON.stringify(out) + "\n", () => process.exit(0));
}

async function run() {
  const steps = args.steps;
  const ctx = { lastUris: [] };
  let i = 0;
  while (true) {
    const sinceConnect = exchanges.length;
    const sessionNo = sessions;
    let h;
    try {
      h = await bounded(open(), args.stepTimeout);
    } catch (err) {
      const res = err instanceof Timeout ? { ok: false, kind: "timeout", message: "connect timed out" } : classify(err, sinceConnect);
      if (connect === null) connect = res;
      for (let j = i; j < steps.length; j++) {
        results[j] = { op: steps[j].op, ok: false, kind: "not_connected", message: sessionNo === 0 ? "the first connect failed" : `reconnect failed: ${res.message}`, session: null, elicited: 0, http_status: null };
      }
      return;
    }
    sessions += 1;
    if (connect === null) {
      connect = { ok: true, protocol_version: h.transport.protocolVersion ?? null, server_name: h.client.getServerVersion()?.name ?? null, http_status: statusOf(sinceConnect, "connect") };
    }
    let broken = false;
    while (i < steps.length && !broken) {
      const step = steps[i];
      state.answer = step.answer || args.elicit;
      const nElicited = state.elicited.length;
      const since = exchanges.length;
      let res;
      try {
        res = await bounded(runStep(h, step, results, ctx), args.stepTimeout);
      } catch (err) {
        res = err instanceof Timeout ? { ok: false, kind: "timeout", message: err.message } : classify(err, since);
        // The SDK's transport outlives an HTTP error: the next step shows whether the
        // session did. Only a step that hung gets a new session.
        broken = res.kind === "timeout";
      }
      results[i] = { op: step.op, ...res, session: sessionNo, elicited: state.elicited.length - nElicited, http_status: statusOf(since, RPC_OF[step.op]) };
      i += 1;
    }
    try { await bounded(h.transport.terminateSession().catch(() => {}).then(() => h.client.close()), 5); } catch { /* teardown */ }
    if (i >= steps.length) return;
  }
}

const deadline = setTimeout(() => emit({ deadline: true }), args.timeout * 1000);
run().then(() => { clearTimeout(deadline); emit(); }, (err) => { clearTimeout(deadline); emit({ crash: String(err?.stack ?? err).slice(-2000) }); });
