/**
 * WebSocket framing by hand (RFC 6455 §5): client frames (masked, or deliberately not),
 * a message cut into a first frame and continuation frames with pings between them, and
 * a reader of the service's frames. Used by the fuzzer's raw sockets.
 */
import { randomBytes } from "node:crypto";
import type { FuzzFrame } from "./frames.js";
import type { Random } from "./random.js";

export const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
export const OPCODE = { continuation: 0x0, text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa } as const;

/** One client frame: FIN bit, opcode, masked payload (RFC 6455 §5.2). */
export function encodeFrame(fin: boolean, opcode: number, payload: Buffer, options: { masked?: boolean; rsv1?: boolean } = {}): Buffer {
  const masked = options.masked ?? true;
  const length = payload.length;
  const lengthBytes = length < 126 ? 0 : length < 65536 ? 2 : 8;
  const maskBit = masked ? 0x80 : 0;
  const header = Buffer.alloc(2 + lengthBytes + (masked ? 4 : 0));
  header[0] = (fin ? 0x80 : 0) | (options.rsv1 === true ? 0x40 : 0) | opcode;
  if (lengthBytes === 0) header[1] = maskBit | length;
  else if (lengthBytes === 2) {
    header[1] = maskBit | 126;
    header.writeUInt16BE(length, 2);
  } else {
    header[1] = maskBit | 127;
    header.writeBigUInt64BE(BigInt(length), 2);
  }
  if (!masked) return Buffer.concat([header, payload]);
  const mask = randomBytes(4);
  mask.copy(header, 2 + lengthBytes);
  const out = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) out[i] = (payload[i] as number) ^ (mask[i & 3] as number);
  return Buffer.concat([header, out]);
}

/** A message as 1-5 frames (first, continuations), with pings between fragments now and then. */
export function encodeMessage(frame: FuzzFrame, rng: Random): Buffer {
  const payload = Buffer.isBuffer(frame.data) ? frame.data : Buffer.from(frame.data, "utf8");
  const pieces = payload.length < 2 ? 1 : rng.int(1, Math.min(5, payload.length));
  const cuts = [...new Set(Array.from({ length: pieces - 1 }, () => rng.int(1, payload.length - 1)))].sort((a, b) => a - b);
  const bounds = [0, ...cuts, payload.length];
  const out: Buffer[] = [];
  for (let i = 0; i + 1 < bounds.length; i++) {
    const first = i === 0;
    const last = i + 2 === bounds.length;
    const opcode = first ? (frame.binary ? OPCODE.binary : OPCODE.text) : OPCODE.continuation;
    out.push(encodeFrame(last, opcode, payload.subarray(bounds[i], bounds[i + 1])));
    if (!last && rng.chance(0.2)) out.push(encodeFrame(true, OPCODE.ping, Buffer.from(`p${frame.index}`)));
  }
  return Buffer.concat(out);
}

/** Reads the service's (unmasked) frames from a byte stream: text messages and the close code. */
export class FrameReader {
  private buffered: Buffer = Buffer.alloc(0);
  private fragments: Buffer[] = [];

  constructor(
    private readonly onText: (text: string) => void,
    private readonly onClose: (code: number) => void,
  ) {}

  push(chunk: Buffer): void {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    for (;;) {
      const frame = this.nextFrame();
      if (frame === undefined) return;
      this.handle(frame.fin, frame.opcode, frame.payload);
    }
  }

  private nextFrame(): { fin: boolean; opcode: number; payload: Buffer } | undefined {
    const b = this.buffered;
    if (b.length < 2) return undefined;
    const fin = ((b[0] as number) & 0x80) !== 0;
    const opcode = (b[0] as number) & 0x0f;
    let length = (b[1] as number) & 0x7f;
    let offset = 2;
    if (length === 126) {
      if (b.length < 4) return undefined;
      length = b.readUInt16BE(2);
      offset = 4;
    } else if (length === 127) {
      if (b.length < 10) return undefined;
      length = Number(b.readBigUInt64BE(2));
      offset = 10;
    }
    if (b.length < offset + length) return undefined;
    const payload = b.subarray(offset, offset + length);
    this.buffered = b.subarray(offset + length);
    return { fin, opcode, payload };
  }

  private handle(fin: boolean, opcode: number, payload: Buffer): void {
    if (opcode === OPCODE.close) {
      this.onClose(payload.length >= 2 ? payload.readUInt16BE(0) : 1005);
      return;
    }
    if (opcode === OPCODE.ping || opcode === OPCODE.pong) return;
    this.fragments.push(Buffer.from(payload));
    if (!fin) return;
    const message = Buffer.concat(this.fragments);
    this.fragments = [];
    this.onText(message.toString("utf8"));
  }
}
