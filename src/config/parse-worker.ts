// The main thread's side of the reload worker (reload-worker.ts): one worker thread for the
// process, started with the first Reloader and reused by every reload.
//
// A reload is parsed there and only there. When the worker cannot answer (it is not up, it
// crashed, it took longer than WORKER_TIMEOUT_MS) the reload is refused: parsing on this thread
// instead would stop every request for as long as the parse takes (an 80,000-key mapping once
// held it for ~100 s). A worker that failed after it had been up is replaced at once, so the
// next reload finds one ready; one that never came up is tried again by the next reload.
import { log } from "../log.ts";
import type { ParseReply, ParseRequest, ReadyMessage } from "./reload-worker.ts";

/** Starts a worker running a module named by its path under src/ (Runtime.createWorker). */
export type WorkerFactory = (entry: string) => Worker;

const WORKER_ENTRY = "config/reload-worker.ts";
/** Longest a reload waits for the worker (to come up and answer) before it is refused. */
export const WORKER_TIMEOUT_MS = 60_000;

// From the sources (Bun, Deno, tests), the module next to this one. The runtime adapters replace
// it: a compiled binary embeds the worker elsewhere.
let workerFactory: WorkerFactory = (entry) => new Worker(new URL(`../${entry}`, import.meta.url).href, { type: "module" });

/** Set by the runtime adapter (src/runtime/*): how this program starts its workers. */
export function setWorkerFactory(factory: WorkerFactory): void {
  workerFactory = factory;
}

/** The worker could not answer; the message is fixed text ("the reload worker <message>") that goes into the reload's problem. */
export class WorkerFailure extends Error {}

interface Pending {
  resolve: (reply: ParseReply) => void;
  reject: (error: WorkerFailure) => void;
}

export class ParseWorker {
  private worker: Worker | null = null;
  /** The running worker has loaded its modules (it said so). */
  private up = false;
  private waitingUp: (() => void)[] = [];
  private nextId = 0;
  private readonly pending = new Map<number, Pending>();
  private readonly timeoutMs: number;
  private readonly factory: WorkerFactory | null;

  /** factory: how to start the thread (tests); default: the runtime's (setWorkerFactory). */
  constructor(timeoutMs = WORKER_TIMEOUT_MS, factory?: WorkerFactory) {
    this.timeoutMs = timeoutMs;
    this.factory = factory ?? null;
  }

  /** Starts the thread if it is not running (its modules then load while no reload waits). */
  start(): Worker | null {
    if (this.worker) return this.worker;
    let w: Worker;
    try {
      w = (this.factory ?? workerFactory)(WORKER_ENTRY);
    } catch (e) {
      log("warn", "config.worker_failed", { message: `reload worker: cannot start: ${(e as Error).message}`, next: "the next reload tries again" });
      return null;
    }
    w.onmessage = (e: MessageEvent<ParseReply | ReadyMessage>) => {
      if ("ready" in e.data) {
        if (this.worker !== w) return;
        this.up = true;
        for (const f of this.waitingUp.splice(0)) f();
        return;
      }
      const p = this.pending.get(e.data.id);
      if (!p) return;
      this.pending.delete(e.data.id);
      p.resolve(e.data);
    };
    w.onerror = (e: ErrorEvent) => {
      e.preventDefault?.(); // handled here: not an uncaught error of this thread
      this.failed(w, "stopped with an error", e.message || "error");
    };
    w.onmessageerror = () => this.failed(w, "sent a message that could not be read", "messageerror");
    // An idle worker must not keep the process alive (Bun; Deno's Web Worker has no unref).
    (w as Worker & { unref?: () => void }).unref?.();
    this.worker = w;
    this.up = false;
    return w;
  }

  /** The worker's answer; rejects with WorkerFailure when it cannot give one within the timeout. */
  parse(req: Omit<ParseRequest, "id">): Promise<ParseReply> {
    const w = this.start();
    if (!w) return Promise.reject(new WorkerFailure("cannot start"));
    const id = ++this.nextId;
    return new Promise<ParseReply>((resolve, reject) => {
      // Not unref'd: a parse under way keeps the process alive until it ends.
      const timer = setTimeout(() => this.failed(w, `gave no answer within ${this.timeoutMs / 1000} s (is the file unusually large? server.maxConfigSize limits it)`, "timeout"), this.timeoutMs);
      const settle = { resolve: (r: ParseReply) => (clearTimeout(timer), resolve(r)), reject: (e: WorkerFailure) => (clearTimeout(timer), reject(e)) };
      this.pending.set(id, settle);
      const send = () => {
        if (this.worker !== w || !this.pending.has(id)) return;
        try {
          w.postMessage({ ...req, id } satisfies ParseRequest);
        } catch (e) {
          this.failed(w, "could not be sent the request", (e as Error).message);
        }
      };
      // A reload that arrives while the worker loads (~60–110 ms after it started) waits for it.
      if (this.up) send();
      else this.waitingUp.push(send);
    });
  }

  private failed(w: Worker, reason: string, detail: string): void {
    if (w !== this.worker) return; // an earlier worker, already given up
    const wasUp = this.up;
    this.worker = null;
    this.up = false;
    this.waitingUp = [];
    try {
      w.terminate();
    } catch {
      // Already gone: there is nothing left to stop.
    }
    const error = new WorkerFailure(reason);
    for (const p of this.pending.values()) p.reject(error);
    this.pending.clear();
    log("warn", "config.worker_failed", {
      message: `reload worker: ${reason}`,
      detail,
      next: wasUp ? "a new worker is started for the next reload" : "the next reload starts a new worker",
    });
    // Replaced at once only when it had worked: one that cannot load would fail again at once.
    if (wasUp) this.start();
  }

  /** Stops the thread (tests). */
  stop(): void {
    const w = this.worker;
    this.worker = null;
    this.up = false;
    try {
      w?.terminate();
    } catch {
      // Already gone: there is nothing left to stop.
    }
  }
}
