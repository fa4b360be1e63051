/**
 * The replies one connection waits for, and the checks on every reply it gets: each
 * expected reply arrives exactly once, is a well-formed JSON-RPC 2.0 response with the
 * expected id and a fitting code, and nothing else arrives (no reply to a notification,
 * no second reply). Replies may come in any order; they are matched by id (batches by
 * the ids of their members), replies with id null by their code.
 */
import type { Family } from "./frames.js";
import { codeProblem, idKey, replyCode, responseProblem, type Expectation, type ExpectedReply } from "./oracle.js";

export interface FrameRef {
  index: number;
  family: Family;
}

export interface Failure extends Partial<FrameRef> {
  problem: string;
  /** The start of the reply text, when a reply is at fault. */
  reply?: string;
}

interface Waiting {
  frame: FrameRef;
  expected: ExpectedReply[];
  batch: boolean;
}

export interface ReplyTally {
  /** Reply objects by code ("ok" for results), batch members included. */
  byCode: Map<string, number>;
  failures: Failure[];
}

export class ReplyLedger {
  /** Waiting frames by key: a single reply's id key, or "batch:" + its members' sorted id keys. */
  private readonly waiting = new Map<string, Waiting[]>();
  private count = 0;
  private readonly listeners = new Set<() => void>();

  constructor(private readonly tally: ReplyTally) {}

  get pending(): number {
    return this.count;
  }

  expect(frame: FrameRef, expectation: Expectation): void {
    if (expectation.kind === "none") return;
    const expected = expectation.kind === "single" ? [expectation.reply] : expectation.replies;
    const batch = expectation.kind === "batch";
    const key = batch ? batchKey(expected.map((e) => e.id)) : (expected[0] as ExpectedReply).id;
    const list = this.waiting.get(key) ?? [];
    list.push({ frame, expected, batch });
    this.waiting.set(key, list);
    this.count++;
  }

  /** One message from the service. */
  receive(text: string): void {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      this.fail({ problem: "a reply is not strict JSON", reply: text.slice(0, 200) });
      return;
    }
    const replies = Array.isArray(value) ? value : [value];
    for (const reply of replies) {
      const problem = responseProblem(reply);
      if (problem !== undefined) {
        this.fail({ problem: `malformed response: ${problem}`, reply: text.slice(0, 200) });
        return;
      }
    }
    const objects = replies as Record<string, unknown>[];
    for (const reply of objects) this.tally.byCode.set(replyCode(reply), (this.tally.byCode.get(replyCode(reply)) ?? 0) + 1);
    const batch = Array.isArray(value);
    if (batch && objects.length === 0) {
      this.fail({ problem: "an empty array as reply", reply: text.slice(0, 200) });
      return;
    }
    const key = batch ? batchKey(objects.map((r) => idKey(r.id))) : idKey((objects[0] as Record<string, unknown>).id);
    const waiting = this.take(key, batch, objects);
    if (waiting === undefined) {
      this.fail({ problem: `a reply that no request waits for (key ${key.slice(0, 80)}): a second reply, or a reply to a notification`, reply: text.slice(0, 200) });
      return;
    }
    for (const problem of pairUp(waiting.expected, objects)) this.fail({ ...waiting.frame, problem, reply: text.slice(0, 200) });
    this.changed();
  }

  /** Every frame still waiting, for the failure report at the end. */
  unanswered(): FrameRef[] {
    return [...this.waiting.values()].flat().map((w) => w.frame);
  }

  /** Forgets what is waiting (after the connection was closed on purpose) and returns it. */
  clear(): FrameRef[] {
    const left = this.unanswered();
    this.waiting.clear();
    this.count = 0;
    this.changed();
    return left;
  }

  /** Resolves once fewer than `limit` replies are pending; rejects after `timeoutMs` without that. */
  whenPendingBelow(limit: number, timeoutMs: number): Promise<void> {
    if (this.count < limit) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (this.count >= limit) return;
        this.listeners.delete(check);
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.listeners.delete(check);
        reject(new Error(`no reply within ${timeoutMs} ms (${this.count} pending)`));
      }, timeoutMs);
      this.listeners.add(check);
    });
  }

  /** The waiting frame this reply answers: by key, and among replies with id null, one whose codes fit. */
  private take(key: string, batch: boolean, replies: Record<string, unknown>[]): Waiting | undefined {
    const list = this.waiting.get(key);
    if (list === undefined) return undefined;
    let at = list.findIndex((w) => w.batch === batch && pairUp(w.expected, replies).length === 0);
    if (at < 0) at = list.findIndex((w) => w.batch === batch);
    if (at < 0) return undefined;
    const [found] = list.splice(at, 1);
    if (list.length === 0) this.waiting.delete(key);
    this.count--;
    return found;
  }

  private fail(failure: Failure): void {
    this.tally.failures.push(failure);
  }

  private changed(): void {
    for (const listener of [...this.listeners]) listener();
  }
}

function batchKey(ids: string[]): string {
  return `batch:${[...ids].sort().join(",")}`;
}

/**
 * Problems pairing expected replies with received ones: every expected id matched by one
 * reply with that id and a fitting code (ids may repeat: members with id null, say).
 */
function pairUp(expected: ExpectedReply[], replies: Record<string, unknown>[]): string[] {
  if (expected.length !== replies.length) return [`expected ${expected.length} reply object(s), got ${replies.length}`];
  const left = [...expected];
  const problems: string[] = [];
  for (const reply of replies) {
    const id = idKey(reply.id);
    const code = replyCode(reply);
    const fitting = left.findIndex((e) => e.id === id && codeProblem(e.code, code) === undefined);
    const at = fitting >= 0 ? fitting : left.findIndex((e) => e.id === id);
    if (at < 0) {
      problems.push(`a reply with id ${id} that was not expected`);
      continue;
    }
    const [match] = left.splice(at, 1) as [ExpectedReply];
    const problem = codeProblem(match.code, code);
    if (problem !== undefined) problems.push(`id ${id}: ${problem}`);
  }
  return problems;
}
