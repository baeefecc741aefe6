// Drives `agentsec mcp` with the real npm MCP client (@modelcontextprotocol/sdk 1.32).
//
// Reads a plan (JSON) on stdin, prints what the client saw (JSON) on stdout:
//   {"transport": "stdio", "command": [ARGV...], "env": {...}, "calls": [...]}
//   {"transport": "http", "url": URL, "token": TOKEN?, "calls": [...]}
// A connection that fails prints {"error": MESSAGE} (a refused token is such a failure).
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const plan = JSON.parse(Buffer.concat(chunks).toString("utf8"));

function transport() {
  if (plan.transport === "stdio") {
    return new StdioClientTransport({
      command: plan.command[0],
      args: plan.command.slice(1),
      env: plan.env,
      stderr: "inherit",
    });
  }
  const headers = plan.token ? { Authorization: `Bearer ${plan.token}` } : {};
  return new StreamableHTTPClientTransport(new URL(plan.url), { requestInit: { headers } });
}

const client = new Client({ name: "agentsec-test", version: "0.0.0" });
let out;
try {
  await client.connect(transport());
  const listed = await client.listTools();
  const results = [];
  for (const call of plan.calls ?? []) {
    const r = await client.callTool({ name: call.name, arguments: call.arguments ?? {} });
    results.push({
      is_error: Boolean(r.isError),
      text: (r.content ?? []).filter((c) => c.type === "text").map((c) => c.text),
      structured: r.structuredContent ?? null,
    });
  }
  out = {
    protocol: client.transport?.protocolVersion ?? null,
    tools: listed.tools.map((t) => ({ name: t.name, description: t.description, input_schema: t.inputSchema })),
    results,
  };
} catch (e) {
  out = { error: String(e?.message ?? e) };
} finally {
  await client.close().catch(() => {});
}
process.stdout.write(JSON.stringify(out));
