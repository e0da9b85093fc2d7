// GET a URL with Node's built-in fetch (undici) and read the body stream as its users do
// (response.body.getReader()), printing one JSON line per event on stdout:
//   {"kind": "node", "version": ..., "fetch": bool}
//   {"kind": "head", "t": s, "status": ..., "reason": ..., "headers": [[k, v]...], "sent": [[k, v]...]}
//   {"kind": "chunk", "t": s, "n": bytes, "data": latin-1 text of the first bytes kept}
//   {"kind": "end", "t": s, "how": "complete" | "deadline" | "watched" | "budget"}
//   {"kind": "error", "t": s, "name": ..., "message": ..., "cause": ..., "connect": bool, "timeout": bool}
// Times are seconds after undici wrote the request head (else after the fetch() call). Usage: node node_fetch.js URL '{"headers": [[k, v]],
// "timeout": s, "deadline": s, "keep": bytes}'. Part of the streaming conformance suite
// (conformance/scenarios/clients.py runs it).
"use strict";

const out = (o) => process.stdout.write(JSON.stringify(o) + "\n");
const [url, optsJson] = process.argv.slice(2);
const opts = JSON.parse(optsJson || "{}");
out({ kind: "node", version: process.versions.node, fetch: typeof fetch === "function" });
if (typeof fetch !== "function") process.exit(0);

// The request head undici writes, from its diagnostics channel (when this Node publishes it).
// Times count from when undici wrote that head (as the raw recorder counts from the request's
// last byte), or from the fetch() call where the channel is missing.
let sent = [];
let sentAt = null;
let timing = false;
try {
  require("node:diagnostics_channel").channel("undici:client:sendHeaders").subscribe((m) => {
    if (!timing) return;
    sentAt = performance.now();
    sent = String(m.headers || "").split("\r\n").filter((l) => l.includes(":"))
      .map((l) => [l.slice(0, l.indexOf(":")).trim(), l.slice(l.indexOf(":") + 1).trim()]);
  });
} catch (e) { /* no channel: the head is not reported */ }

async function main() {
  const ctrl = new AbortController();
  let why = null;
  let idle;
  const arm = () => {
    clearTimeout(idle);
    idle = setTimeout(() => { why = "timeout"; ctrl.abort(new Error(`no data for ${opts.timeout} s`)); },
      (opts.timeout || 10) * 1000);
  };
  const deadline = setTimeout(() => { why = "deadline"; ctrl.abort(new Error("deadline")); },
    (opts.deadline || 60) * 1000);
  // --watch: a stream still open this long after the request is closed and judged on what came
  const watch = opts.watch ? setTimeout(() => { why = "watched"; ctrl.abort(new Error("watched")); },
    opts.watch * 1000) : null;
  try { await (await fetch("data:,warm")).text(); } catch (e) { /* undici loads on the first fetch(): not timed */ }
  timing = true;
  const t0 = performance.now();
  const now = () => (performance.now() - (sentAt === null ? t0 : sentAt)) / 1000;
  let headSeen = false;
  arm();
  try {
    // the target's request: its method and body (base64), as a chat UI's fetch() sends them
    const init = { method: opts.method || "GET", headers: opts.headers || [], redirect: "manual", signal: ctrl.signal };
    if (opts.body != null) init.body = Buffer.from(opts.body, "base64");
    const res = await fetch(url, init);
    headSeen = true;
    out({ kind: "head", t: now(), status: res.status, reason: res.statusText, headers: [...res.headers], sent });
    if (res.body) {
      const reader = res.body.getReader();
      let kept = 0;
      let total = 0;
      for (;;) {
        arm();
        const { done, value } = await reader.read();
        if (done) break;
        const t = now();
        const keep = value.subarray(0, Math.max(0, (opts.keep || 0) - kept));
        kept += keep.length;
        out({ kind: "chunk", t, n: value.length, data: Buffer.from(keep).toString("latin1") });
        total += value.length;
        if (opts.budget && total >= opts.budget) {   // far more than a stream's profile explains
          await reader.cancel().catch(() => {});
          out({ kind: "end", t: now(), how: "budget" });
          return;
        }
      }
    }
    out({ kind: "end", t: now(), how: "complete" });
  } catch (e) {
    if ((why === "deadline" || why === "watched") && headSeen) {
      out({ kind: "end", t: now(), how: why });
    } else {
      const c = e && e.cause;
      const cause = c ? [c.code, c.name, c.message].filter(Boolean).join(": ") : "";
      out({ kind: "error", t: now(), name: e && e.name, message: String(e && e.message), cause,
            code: (c && c.code) || "",
            connect: !headSeen, timeout: why === "timeout" });
    }
  } finally {
    clearTimeout(idle);
    clearTimeout(deadline);
    if (watch) clearTimeout(watch);
  }
}

main().then(() => process.exit(0));
