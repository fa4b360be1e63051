/**
 * The fuzzer's two kinds of connection to the service, each with its reply ledger:
 *  - WsLink: the `ws` client library, one message per frame;
 *  - RawLink: a net.Socket that does the WebSocket handshake by hand (RFC 6455) and
 *    writes masked frames in small pieces with pauses, sometimes fragmented into a
 *    first frame and continuation frames with pings between them. Two RawLinks writing
 *    at once interleave their pieces on the service's event loop.
 */
import { createHash, randomBytes } from "node:crypto";
import { connect, type Socket } from "node:net";
import WebSocket from "ws";
import type { FuzzFrame } from "./frames.js";
import { ReplyLedger, type ReplyTally } from "./ledger.js";
import type { Random } from "./random.js";
import { FrameReader, GUID, OPCODE, encodeFrame, encodeMessage } from "./ws-wire.js";

export interface FuzzLink {
  readonly name: string;
  readonly ledger: ReplyLedger;
  send(frame: FuzzFrame, rng: Random): Promise<void>;
  /** Resolves with the close code once the service closes the connection (or it breaks: 1006). */
  readonly closed: Promise<number>;
  close(): void;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export class WsLink implements FuzzLink {
  readonly closed: Promise<number>;

  private constructor(
    readonly name: string,
    private readonly ws: WebSocket,
    readonly ledger: ReplyLedger,
  ) {
    this.closed = new Promise((resolve) => ws.once("close", (code) => resolve(code)));
    ws.on("message", (data) => ledger.receive(Buffer.isBuffer(data) ? data.toString("utf8") : Buffer.concat(data as Buffer[]).toString("utf8")));
    // a write that races the service's close (after an oversized frame) fails: the close code tells what happened
    ws.on("error", () => {});
  }

  static open(name: string, url: string, tally: ReplyTally): Promise<WsLink> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 });
      ws.once("open", () => resolve(new WsLink(name, ws, new ReplyLedger(tally))));
      ws.once("error", reject);
    });
  }

  send(frame: FuzzFrame): Promise<void> {
    return new Promise((resolve) => this.ws.send(frame.data, { binary: frame.binary }, () => resolve()));
  }

  close(): void {
    this.ws.close();
  }
}

export class RawLink implements FuzzLink {
  readonly closed: Promise<number>;
  private closeCode: ((code: number) => void) | undefined;

  private constructor(
    readonly name: string,
    private readonly socket: Socket,
    readonly ledger: ReplyLedger,
    leftover: Buffer,
  ) {
    this.closed = new Promise((resolve) => {
      this.closeCode = resolve;
    });
    const reader = new FrameReader(
      (text) => ledger.receive(text),
      (code) => this.closeCode?.(code),
    );
    socket.on("data", (chunk: Buffer) => reader.push(chunk));
    socket.on("close", () => this.closeCode?.(1006));
    socket.on("error", () => {});
    if (leftover.length > 0) reader.push(leftover);
  }

  /** Connects and upgrades by hand; the request itself is written in a few pieces too. */
  static async open(name: string, port: number, tally: ReplyTally): Promise<RawLink> {
    const socket = connect({ host: "127.0.0.1", port });
    socket.setNoDelay(true);
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    });
    const key = randomBytes(16).toString("base64");
    const request = `GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`;
    for (let at = 0; at < request.length; at += 17) {
      socket.write(request.slice(at, at + 17));
      await nextTurn();
    }
    const { head, rest } = await readHandshake(socket);
    const accept = createHash("sha1").update(key + GUID).digest("base64");
    if (!head.startsWith("HTTP/1.1 101") || !head.toLowerCase().includes(`sec-websocket-accept: ${accept.toLowerCase()}`)) {
      socket.destroy();
      throw new Error(`${name}: the service refused the hand-made upgrade: ${head.split("\r\n")[0] ?? ""}`);
    }
    return new RawLink(name, socket, new ReplyLedger(tally), rest);
  }

  /** Writes the message in pieces of 1-64 bytes, yielding between pieces, now and then for a millisecond or two. */
  async send(frame: FuzzFrame, rng: Random): Promise<void> {
    // a protocol violation is already wire bytes; anything else becomes 1-5 masked frames
    const bytes = frame.family === "protocol-violations" ? (frame.data as Buffer) : encodeMessage(frame, rng);
    for (let at = 0; at < bytes.length && !this.socket.destroyed; ) {
      const size = rng.int(1, 64);
      const ok = this.socket.write(bytes.subarray(at, at + size));
      at += size;
      if (!ok) await Promise.race([new Promise((resolve) => this.socket.once("drain", resolve)), this.closed]);
      if (rng.chance(0.03)) await sleep(rng.int(1, 2));
      else await nextTurn();
    }
  }

  close(): void {
    this.socket.end(encodeFrame(true, OPCODE.close, Buffer.from([0x03, 0xe8])));
  }
}

function readHandshake(socket: Socket): Promise<{ head: string; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    let buffered: Buffer = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      buffered = Buffer.concat([buffered, chunk]);
      const end = buffered.indexOf("\r\n\r\n");
      if (end < 0) return;
      socket.off("data", onData);
      socket.off("close", onClose);
      resolve({ head: buffered.subarray(0, end).toString("latin1"), rest: buffered.subarray(end + 4) });
    };
    const onClose = (): void => reject(new Error("the service closed the connection during the handshake"));
    socket.on("data", onData);
    socket.once("close", onClose);
  });
}
