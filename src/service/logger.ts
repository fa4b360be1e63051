/** Structured log lines: one JSON object per line, `{"ts", "level", "msg", ...fields}`. */
import type { Writable } from "node:stream";
import type { Log, LogFields } from "../protocol/log.js";

export type LogLevel = "debug" | "info" | "warn" | "error";
const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export function createLogger(out: Writable, level: LogLevel = "info", now: () => Date = () => new Date()): Log {
  const write = (lvl: LogLevel) => (msg: string, fields: LogFields = {}) => {
    if (RANK[lvl] < RANK[level]) return;
    out.write(`${JSON.stringify({ ts: now().toISOString(), level: lvl, msg, ...fields })}\n`);
  };
  return { debug: write("debug"), info: write("info"), warn: write("warn"), error: write("error") };
}
