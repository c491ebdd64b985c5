// Command-line parsing: serve | check | explain | keygen | apikey create | hash-secret | version | help.
import { VERSION } from "./version.ts";

export interface CliOptions {
  command: "serve" | "check" | "explain" | "keygen" | "version" | "help" | "apikey-create" | "hash-secret";
  config?: string;
  port?: number;
  alg?: string;
  id?: string;
  clientId?: string;
  secret?: string;
  /** explain: METHOD and URL, its -H headers ("Name: value"), --from, --json. */
  positional?: string[];
  headers?: string[];
  from?: string;
  json?: boolean;
}

export { VERSION };

export const HELP = `otoroshi-lite ${VERSION} — an API gateway configured by one YAML file

Usage:
  otoroshi-lite [serve] [--config FILE] [--port N]   serve (default command)
  otoroshi-lite check [--config FILE]                validate the config; exit 0 or 1 with every problem
  otoroshi-lite explain [--config FILE] [--json] [--from IP] METHOD URL [-H 'Name: value']...
                                                     what the gateway would do with this request (route,
                                                     plugins, refusal or backend URL and headers, secrets
                                                     masked), sending nothing anywhere
  otoroshi-lite keygen [--alg ES256] [--id NAME]     print a new key pair, ready to paste under keypairs:
                                                     (--alg RS256 | ES256 | ES384 | ES512 | EdDSA)
  otoroshi-lite apikey create --client-id ID         print a new random secret once, and the YAML entry
                                                     holding only its hash
  otoroshi-lite hash-secret [SECRET]                 print sha256:<hex> for a secret (read from stdin if absent)
  otoroshi-lite version | --version                  print the version, platform, commit and build date
  otoroshi-lite help | --help                        print this help

Options:
  -c, --config FILE   config file (default: $OTOROSHI_CONFIG, else ./otoroshi.yaml)
  -p, --port N        HTTP port, overrides server.port (0 picks a free port)

Signals: SIGHUP reloads the config; SIGTERM/SIGINT stop gracefully.
Logs: JSON lines on stderr (OTOROSHI_LOG_LEVEL=debug|info|warn|error).
Docs: https://github.com/otoroshi-lite/otoroshi-lite/tree/main/docs
      (configuration.md lists every field of otoroshi.yaml; operations.md covers reloads and logs)`;

export class UsageError extends Error {}

export function parseArgs(argv: readonly string[]): CliOptions {
  const args = [...argv];
  const opts: CliOptions = { command: "serve" };
  const first = args[0];
  if (first && !first.startsWith("-")) {
    args.shift();
    if (first === "serve" || first === "check" || first === "explain" || first === "keygen" || first === "version" || first === "help") opts.command = first;
    else if (first === "hash-secret") opts.command = "hash-secret";
    else if (first === "apikey") {
      const sub = args.shift();
      if (sub !== "create") throw new UsageError(`unknown apikey command "${sub ?? ""}" (try: apikey create --client-id ID)`);
      opts.command = "apikey-create";
    } else throw new UsageError(`unknown command "${first}" (try --help)`);
  }
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const eq = a.indexOf("=");
    const flag = a.startsWith("--") && eq > 0 ? a.slice(0, eq) : a;
    const value = (): string => {
      if (a.startsWith("--") && eq > 0) return a.slice(eq + 1);
      const v = args[++i];
      if (v === undefined) throw new UsageError(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case "-h":
      case "--help":
        opts.command = "help";
        break;
      case "-v":
      case "--version":
        opts.command = "version";
        break;
      case "-c":
      case "--config":
        opts.config = value();
        break;
      case "-p":
      case "--port": {
        const v = value();
        const n = Number(v);
        if (!/^\d+$/.test(v) || n > 65535) throw new UsageError(`--port must be a number from 0 to 65535, got "${v}"`);
        opts.port = n;
        break;
      }
      case "--alg":
        opts.alg = value();
        break;
      case "--id":
        opts.id = value();
        break;
      case "--client-id":
        opts.clientId = value();
        break;
      case "-H":
      case "--header":
        (opts.headers ??= []).push(value());
        break;
      case "--from":
        opts.from = value();
        break;
      case "--json":
        opts.json = true;
        break;
      default:
        if (opts.command === "hash-secret" && !a.startsWith("-") && opts.secret === undefined) opts.secret = a;
        else if (opts.command === "explain" && !a.startsWith("-")) (opts.positional ??= []).push(a);
        else throw new UsageError(`unknown option "${a}" (try --help)`);
    }
  }
  return opts;
}
