// Drive an MCP server with the official TypeScript SDK client (what Claude Code, the
// Inspector and Cursor use), for testkit/typescript.py.
//
// Input (stdin, one JSON object):
//   {"transport": {"kind": "stdio", "command": "...", "args": [...], "env": {...},
//                  "cwd": "...", "stderrFile": "/path/log"}
//              | {"kind": "http", "url": "http://.../mcp", "headers": {...}},
//    "timeoutMs": 30000,
//    "operations": [{"op": "listTools"}, {"op": "callTool", "name": "...", "arguments": {...}}, ...]}
//
// Output (stdout): one JSON line for the connection ({"op": "connect", ...}), then one per
// operation, in order: {"op", "ok": true, "result"} or {"op", "ok": false, "error":
// {"name", "code", "message", "data"}} with the exact message the SDK's thrown error
// carries. An operation that fails does not stop the next one; a failed connection ends
// the run (a "reconnect" operation opens a new one). Exit code 0 unless the input itself
// is unusable.

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ResultSchema } from '@modelcontextprotocol/sdk/types.js';
import { openSync, closeSync } from 'node:fs';

const CLIENT_INFO = { name: 'session-buddy-tsclient', version: '1.0.0' };
const transportErrors = [];

async function readInput() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

function emit(line) {
  process.stdout.write(JSON.stringify(line) + '\n');
}

function describe(error) {
  if (!(error instanceof Error)) return { name: typeof error, message: String(error) };
  const described = { name: error.name || error.constructor.name, message: error.message };
  if (error.code !== undefined) described.code = error.code;
  if (error.data !== undefined) described.data = error.data;
  return described;
}

function buildTransport(spec, stderrFd) {
  if (spec.kind === 'stdio') {
    return new StdioClientTransport({
      command: spec.command,
      args: spec.args ?? [],
      env: spec.env,
      cwd: spec.cwd,
      stderr: stderrFd ?? 'inherit',
    });
  }
  if (spec.kind === 'http') {
    return new StreamableHTTPClientTransport(new URL(spec.url), {
      requestInit: { headers: spec.headers ?? {} },
    });
  }
  throw new Error(`unknown transport kind: ${spec.kind}`);
}

class Connection {
  constructor(spec, timeoutMs) {
    this.spec = spec;
    this.timeoutMs = timeoutMs;
    this.stderrFd = null;
  }

  async open() {
    if (this.spec.kind === 'stdio' && this.spec.stderrFile) {
      this.stderrFd = openSync(this.spec.stderrFile, 'a');
    }
    this.transport = buildTransport(this.spec, this.stderrFd);
    this.client = new Client(CLIENT_INFO, { capabilities: {} });
    this.client.onerror = (error) => transportErrors.push(describe(error).message);
    await this.client.connect(this.transport, { timeout: this.timeoutMs });
    return {
      serverInfo: this.client.getServerVersion() ?? null,
      capabilities: this.client.getServerCapabilities() ?? null,
      instructions: this.client.getInstructions() ?? null,
      protocolVersion: this.transport.protocolVersion ?? null,
      sessionId: this.transport.sessionId ?? null,
    };
  }

  async close() {
    try {
      await this.client?.close();
    } finally {
      if (this.stderrFd !== null) {
        closeSync(this.stderrFd);
        this.stderrFd = null;
      }
    }
  }
}

const OPERATIONS = {
  listTools: (c) => c.client.listTools(undefined, c.options),
  callTool: (c, op) =>
    c.client.callTool({ name: op.name, arguments: op.arguments ?? {} }, undefined, c.options),
  ping: (c) => c.client.ping(c.options),
  listPrompts: (c, op) => c.client.listPrompts(op.params, c.options),
  getPrompt: (c, op) => c.client.getPrompt(op.params, c.options),
  listResources: (c, op) => c.client.listResources(op.params, c.options),
  readResource: (c, op) => c.client.readResource(op.params, c.options),
  // Any method, any params; the result is only checked to be a JSON-RPC result object.
  request: (c, op) =>
    c.client.request({ method: op.method, params: op.params }, ResultSchema, c.options),
  sessionId: async (c) => c.transport.sessionId ?? null,
  terminateSession: async (c) => {
    await c.transport.terminateSession();
    return null;
  },
};

async function main() {
  const input = await readInput();
  const timeoutMs = input.timeoutMs ?? 30000;
  let connection = new Connection(input.transport, timeoutMs);
  const connect = async (op) => {
    try {
      emit({ op, ok: true, result: await connection.open() });
      connection.options = { timeout: timeoutMs };
      return true;
    } catch (error) {
      emit({ op, ok: false, error: describe(error) });
      await connection.close().catch(() => {});
      return false;
    }
  };
  let connected = await connect('connect');
  for (const op of input.operations ?? []) {
    if (op.op === 'reconnect') {
      await connection.close().catch(() => {});
      connection = new Connection(input.transport, timeoutMs);
      connected = await connect('reconnect');
      continue;
    }
    if (!connected) break;
    const run = OPERATIONS[op.op];
    if (run === undefined) {
      emit({ op: op.op, ok: false, error: { name: 'UsageError', message: `unknown op ${op.op}` } });
      continue;
    }
    try {
      emit({ op: op.op, ok: true, result: await run(connection, op) });
    } catch (error) {
      emit({ op: op.op, ok: false, error: describe(error) });
    }
  }
  await connection.close().catch(() => {});
  if (transportErrors.length > 0) {
    emit({ op: 'transportErrors', ok: true, result: transportErrors });
  }
}

main().then(
  () => process.exit(0),
  (error) => {
    process.stderr.write(`tsclient: ${error?.stack ?? error}\n`);
    process.exit(2);
  },
);
