/** Bad input through a real WebSocket: every JSON-RPC error code, and the service keeps serving. */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { silentLog } from "../../src/protocol/log.js";
import { startWsService, type RunningService } from "../../src/service/service.js";
import { RpcClient, payload, tempDb } from "./harness.js";

let service: RunningService;
let client: RpcClient;

beforeEach(async () => {
  service = await startWsService({ db: tempDb(), version: "test", log: silentLog, port: 0, maxPayload: 64 * 1024 });
  client = await RpcClient.connect(service.url);
});

afterEach(async () => {
  client.close();
  await service.close();
});

type Reply = { jsonrpc: string; id: unknown; error?: { code: number; message: string; data?: unknown }; result?: unknown };

describe("service errors", () => {
  it.each([
    ["{not json", -32700, "parse error"],
    ['{"jsonrpc":"2.0","id":1,"method":"service.health"', -32700, "parse error"],
    ["42", -32600, "must be a JSON object"],
    ["null", -32600, "must be a JSON object"],
    ["[]", -32600, "empty batch"],
    ['{"id":1,"method":"service.health"}', -32600, "jsonrpc"],
    ['{"jsonrpc":"1.0","id":1,"method":"service.health"}', -32600, "jsonrpc"],
    ['{"jsonrpc":"2.0","id":1,"method":7}', -32600, "method must be a string"],
    ['{"jsonrpc":"2.0","id":{},"method":"service.health"}', -32600, "id must be"],
    ['{"jsonrpc":"2.0","id":1,"method":"service.health","params":5}', -32600, "params must be"],
    ['{"jsonrpc":"2.0","id":1,"method":"trial.explode"}', -32601, "Method not found"],
  ])("answers %s with %i", async (frame, code, text) => {
    const reply = (await client.exchange(frame)) as Reply;
    expect(reply.jsonrpc).toBe("2.0");
    expect(reply.error?.code).toBe(code);
    expect(reply.error?.message).toContain(text);
    expect(await client.call("service.health")).toMatchObject({ status: "ok" });
  });

  it("answers invalid params with -32602 naming the field, the value and the expectation", async () => {
    const frame = JSON.stringify({
      jsonrpc: "2.0",
      id: "p1",
      method: "trial.report",
      params: { study: "s", trial: "t", payload: { step: 0, layers: [{ grad_abs_mean: "big" }] } },
    });
    const reply = (await client.exchange(frame)) as Reply;
    expect(reply.id).toBe("p1");
    expect(reply.error?.code).toBe(-32602);
    expect(reply.error?.message).toBe('params.payload.layers[0].grad_abs_mean: got "big", expected a number or null');
    expect(reply.error?.data).toEqual({ issues: [{ path: "params.payload.layers[0].grad_abs_mean", value: "big", expected: "a number or null" }] });
  });

  it("accepts NaN, Infinity and -Infinity tokens as non-finite values", async () => {
    const frame = JSON.stringify({ jsonrpc: "2.0", id: 9, method: "trial.reportAndAssess", params: { study: "s", trial: "t", payload: { step: 0, metrics: { train_loss: 0 }, layers: [{ grad_abs_mean: 0 }] } } })
      .replace('"train_loss":0', '"train_loss":NaN')
      .replace('"grad_abs_mean":0', '"grad_abs_mean":Infinity');
    const reply = (await client.exchange(frame)) as { result: { stop: boolean; symptoms: { code: string; rule: string }[] } };
    expect(reply.result.stop).toBe(true);
    expect(reply.result.symptoms.map((s) => `${s.code}:${s.rule}`)).toEqual(["NF:non_finite_metric", "NF:non_finite_layer"]);
  });

  it("answers a batch with an array, notifications with nothing", async () => {
    const batch = JSON.stringify([
      { jsonrpc: "2.0", id: 1, method: "service.health" },
      { jsonrpc: "2.0", method: "trial.report", params: { study: "s", trial: "n", payload: payload(0) } },
      { jsonrpc: "2.0", id: 2, method: "nope" },
    ]);
    const reply = (await client.exchange(batch)) as Reply[];
    expect(Array.isArray(reply)).toBe(true);
    expect(reply.map((r) => r.id)).toEqual([1, 2]);
    expect(reply[0]?.result).toMatchObject({ status: "ok" });
    expect(reply[1]?.error?.code).toBe(-32601);
    const trials = await client.call<{ trials: { trial: string }[] }>("study.trials", { study: "s" });
    expect(trials.trials.map((t) => t.trial)).toEqual(["n"]);
  });

  it("refuses binary frames with -32600 and keeps the connection", async () => {
    const reply = (await client.exchange(Buffer.from('{"jsonrpc":"2.0","id":1,"method":"service.health"}'), true)) as Reply;
    expect(reply.error?.code).toBe(-32600);
    expect(reply.error?.message).toContain("binary frames");
    expect(await client.call("service.health")).toMatchObject({ status: "ok" });
  });

  it("closes a connection that sends an oversized frame with 1009, and serves the others", async () => {
    const victim = await RpcClient.connect(service.url);
    const closed = new Promise<number>((resolve) => victim.ws.on("close", (code) => resolve(code)));
    victim.ws.send(JSON.stringify({ jsonrpc: "2.0", id: 1, method: "service.health", params: { pad: "x".repeat(100_000) } }));
    expect(await closed).toBe(1009);
    expect(await client.call("service.health")).toMatchObject({ status: "ok" });
  });
});
