/**
 * A real HTTP server that speaks NNI 3.0's trial command channel the way the NNI manager
 * does (ts/nni_manager/common/command_channel/http.ts): PUT = a command from the trial
 * (JSON body, answered 200 with an empty body, or 410 once the channel is closed); GET = a
 * long poll for a command to the trial, answered with the command as JSON (200), or
 * after `pollMs` with nothing to send 408, or 410 once closed.
 *
 * The parameter command is queued once the trial has sent `request_parameter` and a GET
 * has already been answered 408, so every test sees "408 then 200".
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface ChannelOptions {
  /** The parameter record (ParameterRecord) the "tuner" sends; it is JSON-encoded into the command. */
  parameter?: Record<string, unknown>;
  /** How long a GET waits before 408. NNI waits 1 s; tests wait less. */
  pollMs?: number;
  /** Answer every request with 410 (the channel closed). */
  closed?: boolean;
  /** Answer metric PUTs with this status instead of 200. */
  metricStatus?: number;
  /**
   * Close the connection, without an answer and without recording the metric, on this many
   * metric PUTs: what the manager's server does to a kept-alive connection it has just timed out.
   */
  dropMetricRequests?: number;
}

export interface RecordedPut {
  contentType: string | undefined;
  body: Record<string, unknown>;
}

export class FakeNniChannel {
  readonly puts: RecordedPut[] = [];
  readonly getStatuses: number[] = [];
  /** What the trial asked for, path included: NNI's channel URL is `.../<channel id>`. */
  readonly paths: string[] = [];
  private readonly outgoing: unknown[] = [];
  private dropped = 0;
  private requested = false;
  private sent = false;
  private server: Server | undefined;
  url = "";

  constructor(private readonly options: ChannelOptions = {}) {}

  async start(): Promise<string> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve) => this.server?.listen(0, "127.0.0.1", resolve));
    const { port } = this.server.address() as AddressInfo;
    this.url = `http://127.0.0.1:${port}/trial-channel/Ab3xY`;
    return this.url;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.server = undefined;
  }

  /** The inner objects of the metric PUTs, parsed once (their `value` stays a string). */
  metrics(): Record<string, unknown>[] {
    return this.puts.filter((p) => p.body.type === "metric").map((p) => JSON.parse(p.body.metric as string) as Record<string, unknown>);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.paths.push(`${req.method ?? ""} ${req.url ?? ""}`);
    if (req.method === "PUT") {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      if (this.options.closed) return this.status(res, 410);
      const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as Record<string, unknown>;
      if (body.type === "metric" && this.dropped < (this.options.dropMetricRequests ?? 0)) {
        this.dropped++;
        req.socket.destroy();
        return;
      }
      this.puts.push({ contentType: req.headers["content-type"], body });
      if (body.type === "request_parameter") this.requested = true;
      if (body.type === "metric" && this.options.metricStatus) return this.status(res, this.options.metricStatus);
      res.end();
      return;
    }
    if (req.method === "GET") {
      if (this.options.closed) return this.get(res, 410);
      const command = this.outgoing.shift() ?? (await this.pop());
      if (command === undefined) {
        this.get(res, 408);
        if (this.requested && !this.sent && this.options.parameter) {
          this.sent = true;
          this.outgoing.push({ type: "parameter", parameter: JSON.stringify(this.options.parameter) });
        }
        return;
      }
      this.getStatuses.push(200);
      res.setHeader("content-type", "application/json; charset=utf-8");
      res.end(JSON.stringify(command));
      return;
    }
    this.status(res, 404);
  }

  /** Waits `pollMs` for a command (nothing is queued while a GET waits here). */
  private async pop(): Promise<unknown> {
    await new Promise((resolve) => setTimeout(resolve, this.options.pollMs ?? 50));
    return this.outgoing.shift();
  }

  private get(res: ServerResponse, status: number): void {
    this.getStatuses.push(status);
    this.status(res, status);
  }

  private status(res: ServerResponse, status: number): void {
    res.statusCode = status;
    res.end();
  }
}
