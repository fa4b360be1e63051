/**
 * JSON-RPC over standard input/output: one request (or batch) per line in, one reply
 * per line out. The same handler as the WebSocket transport. Lines longer than
 * `maxPayload` bytes are answered with an invalid-request error without being
 * buffered whole. Resolves when the input ends and every reply has been written.
 */
import type { Readable, Writable } from "node:stream";
import { readLines } from "../io/lines.js";
import type { Log } from "../protocol/log.js";
import { RpcHandler } from "../protocol/rpc-server.js";

export async function runStdioTransport(
  input: Readable,
  output: Writable,
  handler: RpcHandler,
  maxPayload: number,
  log: Log,
): Promise<void> {
  const inFlight = new Set<Promise<void>>();
  const send = (reply: string | null): void => {
    if (reply !== null) output.write(`${reply}\n`);
  };
  await readLines(input, maxPayload, {
    line: (text) => {
      if (text.trim() === "") return;
      const job = handler.handleText(text).then(send, (err: unknown) => log.error("unhandled error while answering", { error: String(err) }));
      inFlight.add(job);
      void job.finally(() => inFlight.delete(job));
    },
    tooLong: (length) => send(RpcHandler.refusal(`a frame of ${length} bytes exceeds the limit of ${maxPayload} bytes`)),
  });
  await Promise.all(inFlight);
}
