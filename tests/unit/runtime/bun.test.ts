import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import tls from "node:tls";
import { gzipSync } from "node:zlib";
import { setLogSink } from "../../../src/log.ts";
import { runtime } from "../../../src/runtime/bun.ts";
import type { ServeOptions, ServerHandle } from "../../../src/runtime/types.ts";

const dir = mkdtempSync(join(tmpdir(), "oto-bun-runtime-"));
const servers: ServerHandle[] = [];
type Pem = { cert: string; key: string };
let keys: { ca1: string; ca2: string; local: Pem; a: Pem; b: Pem };

/** A CA and leaves signed by it (as a real deployment has; Deno refuses CA:TRUE leaves). */
function pki() {
  const run = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  const ca = (n: string) => run("req", "-x509", ...ec, "-subj", `/CN=${n}`, "-keyout", `${n}.key`, "-out", `${n}.crt`, "-days", "2");
  const leaf = (n: string, caName: string, san: string) => {
    run("req", ...ec, "-subj", `/CN=${n}`, "-keyout", `${n}.key`, "-out", `${n}.csr`);
    writeFileSync(join(dir, `${n}.ext`), `subjectAltName=${san}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n`);
    run("x509", "-req", "-in", `${n}.csr`, "-CA", `${caName}.crt`, "-CAkey", `${caName}.key`, "-CAcreateserial", "-days", "2", "-extfile", `${n}.ext`, "-out", `${n}.crt`);
  };
  ca("ca1");
  ca("ca2");
  leaf("local", "ca1", "DNS:localhost,IP:127.0.0.1");
  leaf("a", "ca1", "DNS:a.test");
  leaf("b", "ca1", "DNS:b.test,DNS:*.b.test");
  const pem = (n: string) => ({ cert: readFileSync(join(dir, `${n}.crt`), "utf8"), key: readFileSync(join(dir, `${n}.key`), "utf8") });
  return { ca1: pem("ca1").cert, ca2: pem("ca2").cert, local: pem("local"), a: pem("a"), b: pem("b") };
}

async function start(options: Partial<ServeOptions> & Pick<ServeOptions, "handler">): Promise<ServerHandle> {
  const s = await runtime.serve({ hostname: "127.0.0.1", port: 0, ...options });
  servers.push(s);
  return s;
}

/** The CN of the certificate the server presents for an SNI name ("" sends none). */
function certFor(port: number, servername: string): Promise<string> {
  return new Promise((res, rej) => {
    const socket = tls.connect({ host: "127.0.0.1", port, ...(servername ? { servername } : {}), rejectUnauthorized: false }, () => {
      const cn = socket.getPeerCertificate().subject?.CN;
      socket.end();
      res(String(cn));
    });
    socket.on("error", rej);
  });
}

beforeAll(() => {
  keys = pki();
});

afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop(true)));
  rmSync(dir, { recursive: true, force: true });
});

describe("bun runtime: serve", () => {
  test("listens on a free port and reports the peer address", async () => {
    const s = await start({ handler: (_req, info) => Response.json(info) });
    expect(s.port).toBeGreaterThan(0);
    expect(await (await fetch(`http://127.0.0.1:${s.port}/`)).json()).toEqual({ remoteAddress: "127.0.0.1", secure: false });
  });

  test("reports an IPv4 peer of a dual-stack listener as plain IPv4", async () => {
    const s = await start({ hostname: "::", handler: (_req, info) => new Response(info.remoteAddress) });
    expect(await (await fetch(`http://127.0.0.1:${s.port}/`)).text()).toBe("127.0.0.1");
  });

  test("answers a throwing handler with a JSON 500 and no detail", async () => {
    const lines: string[] = [];
    setLogSink((line) => lines.push(line));
    try {
      const s = await start({
        handler: () => {
          throw new Error("secret detail");
        },
      });
      const res = await fetch(`http://127.0.0.1:${s.port}/`);
      const text = await res.text();
      expect(res.status).toBe(500);
      expect(JSON.parse(text)).toEqual({ "Otoroshi-Error": "internal error" });
      expect(text).not.toContain("secret");
      expect(lines.some((l) => l.includes("http.unhandled_error"))).toBe(true);
    } finally {
      setLogSink((line) => process.stderr.write(line + "\n"));
    }
  });

  test("sends 100 Continue so a client with Expect: 100-continue uploads its body", async () => {
    const s = await start({ handler: async (req) => new Response(`got ${(await req.text()).length}`) });
    const reply = await new Promise<string>((res, rej) => {
      let seen = "";
      const sock = net.connect(s.port, "127.0.0.1", () => {
        sock.write(`POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`);
      });
      sock.on("data", (d) => {
        seen += d.toString();
        // The body goes only after the server said 100, as curl does.
        if (seen.startsWith("HTTP/1.1 100") && !seen.includes("hello")) sock.write("hello");
      });
      sock.on("end", () => res(seen));
      sock.on("error", rej);
      setTimeout(() => rej(new Error(`timeout: ${seen}`)), 3000);
    });
    expect(reply).toStartWith("HTTP/1.1 100 Continue");
    expect(reply).toContain("HTTP/1.1 200");
    expect(reply).toContain("got 5");
  });

  test("refuses a body over maxRequestBodySize with 413", async () => {
    const s = await start({ maxRequestBodySize: 1000, idleTimeoutSeconds: 10_000, handler: async (req) => new Response(await req.text()) });
    expect((await fetch(`http://127.0.0.1:${s.port}/`, { method: "POST", body: "x".repeat(500) })).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${s.port}/`, { method: "POST", body: "x".repeat(5000) })).status).toBe(413);
  });

  test("stop closes the listener", async () => {
    const s = await runtime.serve({ hostname: "127.0.0.1", port: 0, handler: () => new Response("x") });
    await s.stop();
    await expect(fetch(`http://127.0.0.1:${s.port}/`)).rejects.toThrow();
  });

  test("chooses the certificate by SNI, wildcards included, first cert by default", async () => {
    const s = await start({
      tls: [{ ...keys.a, serverNames: ["a.test"] }, { ...keys.b, serverNames: ["b.test", "*.b.test"] }],
      handler: (_req, info) => Response.json(info),
    });
    const url = `https://127.0.0.1:${s.port}/`;
    for (const serverName of ["a.test", "b.test", "x.B.test"]) {
      const res = await fetch(url, { tls: { ca: keys.ca1, serverName } });
      expect(await res.json()).toEqual({ remoteAddress: "127.0.0.1", secure: true });
    }
    expect(await certFor(s.port, "b.test")).toBe("b");
    expect(await certFor(s.port, "other.test")).toBe("a");
    expect(await certFor(s.port, "")).toBe("a");
  });
});

describe("bun runtime: upstreamFetch", () => {
  test("trusts only the given CA for a backend, or anything when insecure", async () => {
    const s = await start({ tls: [{ ...keys.local, serverNames: ["localhost"] }], handler: () => new Response("backend") });
    const url = `https://localhost:${s.port}/`;
    await expect(runtime.upstreamFetch()(url, {})).rejects.toThrow();
    await expect(runtime.upstreamFetch({ ca: keys.ca2 })(url, {})).rejects.toThrow();
    expect(await (await runtime.upstreamFetch({ ca: keys.ca1 })(url, {})).text()).toBe("backend");
    expect(await (await runtime.upstreamFetch({ insecure: true })(url, {})).text()).toBe("backend");
    expect(runtime.upstreamFetch({ ca: keys.ca1 })).toBe(runtime.upstreamFetch({ ca: keys.ca1 }));
  });

  test("passes compressed bodies through, honours Host and does not follow redirects", async () => {
    const gz = gzipSync("hello ".repeat(300));
    const s = await start({
      handler: (req) => {
        const path = new URL(req.url).pathname;
        if (path === "/gzip") return new Response(gz, { headers: { "content-encoding": "gzip" } });
        if (path === "/redirect") return new Response(null, { status: 302, headers: { location: "/elsewhere" } });
        return new Response(req.headers.get("host"));
      },
    });
    const up = runtime.upstreamFetch();
    const zipped = await up(`http://127.0.0.1:${s.port}/gzip`, { headers: { "accept-encoding": "gzip" } });
    expect(zipped.headers.get("content-encoding")).toBe("gzip");
    expect(new Uint8Array(await zipped.arrayBuffer())).toEqual(new Uint8Array(gz));
    expect(await (await up(`http://127.0.0.1:${s.port}/`, { headers: { host: "foo.example" } })).text()).toBe("foo.example");
    const redirect = await up(`http://127.0.0.1:${s.port}/redirect`, {});
    expect(redirect.status).toBe(302);
    expect(redirect.headers.get("location")).toBe("/elsewhere");
  });
});

describe("bun runtime: process", () => {
  test("names itself and delivers signals to listeners", async () => {
    expect(runtime.name).toBe("bun");
    expect(runtime.version).toBe(Bun.version);
    let fired = false;
    runtime.onSignal("SIGHUP", () => {
      fired = true;
    });
    process.kill(process.pid, "SIGHUP");
    for (let i = 0; i < 100 && !fired; i++) await Bun.sleep(10);
    expect(fired).toBe(true);
  });

  test("args are the user's arguments, from source and from a compiled binary", async () => {
    const entry = join(dir, "args.ts");
    const adapter = resolve(import.meta.dir, "../../../src/runtime/bun.ts");
    writeFileSync(entry, `import { runtime } from ${JSON.stringify(adapter)};\nconsole.log(JSON.stringify(runtime.args));\n`);
    const fromSource = execFileSync(process.execPath, [entry, "serve", "--config", "a b.yaml"], { encoding: "utf8" });
    expect(JSON.parse(fromSource)).toEqual(["serve", "--config", "a b.yaml"]);
    const binary = join(dir, "args-bin");
    execFileSync(process.execPath, ["build", "--compile", entry, "--outfile", binary], { stdio: "pipe" });
    const fromBinary = execFileSync(binary, ["serve", "--config", "a b.yaml"], { encoding: "utf8" });
    expect(JSON.parse(fromBinary)).toEqual(["serve", "--config", "a b.yaml"]);
  }, 60_000);
});
