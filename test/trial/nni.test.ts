/** The NNI 3.0 host against a real HTTP server speaking NNI's trial command channel; bodies are checked byte for byte where it matters. */
import { afterEach, describe, expect, it } from "vitest";
import { trial, type Trial, type TrialOptions } from "../../src/index.js";
import { parseJson } from "../../src/schema/json.js";
import { runTrain, warnings } from "./child.js";
import { FakeNniChannel, type ChannelOptions } from "./nni-channel.js";

const PARAMETER = { parameter_id: 7, parameter_source: "algorithm", parameters: { lr: 0.01, optimizer: "adam", units: 64 }, parameter_index: 0 };

const channels: FakeNniChannel[] = [];
const trials: Trial[] = [];
afterEach(async () => {
  for (const t of trials.splice(0)) t.close();
  for (const c of channels.splice(0)) await c.stop();
});

async function channel(options: ChannelOptions = { parameter: PARAMETER }): Promise<FakeNniChannel> {
  const c = new FakeNniChannel(options);
  channels.push(c);
  await c.start();
  return c;
}

function nniEnv(c: FakeNniChannel, extra: Record<string, string> = {}): Record<string, string> {
  return { NNI_PLATFORM: "local", NNI_TRIAL_JOB_ID: "Ab3xY", NNI_EXP_ID: "exp1", NNI_TRIAL_COMMAND_CHANNEL: c.url, ...extra };
}

async function open(c: FakeNniChannel, options: Partial<TrialOptions> = {}, extra: Record<string, string> = {}): Promise<{ t: Trial; warned: string[] }> {
  const warned: string[] = [];
  const t = await trial({ env: nniEnv(c, extra), signals: false, warn: (m) => warned.push(m), ...options });
  trials.push(t);
  return { t, warned };
}

const epoch = (step: number, metrics: Record<string, number | null>) => ({ step, max_steps: 3, metrics, non_finite: false });

describe("NNI 3.0 trial command channel", () => {
  it("requests the parameter once, polls past a 408, reports PERIODICAL 0,1,2 and FINAL 0 with the exact bodies", async () => {
    const c = await channel();
    const { t, warned } = await open(c);
    expect(t.host).toBe("nni");
    expect(t.id).toBe("Ab3xY");
    expect(t.params).toEqual({ lr: 0.01, optimizer: "adam", units: 64 });
    expect(c.puts.map((p) => p.body)).toEqual([{ type: "request_parameter" }]);
    expect(c.getStatuses).toEqual([408, 200]);

    const payloads = [epoch(0, { train_loss: 1.2, val_acc: 0.61 }), epoch(1, { train_loss: 0.8, val_acc: 0.72 }), epoch(2, { train_loss: 0.5, val_acc: 0.8 })];
    for (const p of payloads) expect(await t.report(p)).toEqual({ stop: false });
    await t.final(0.8);

    expect(c.puts.every((p) => p.contentType === "application/json")).toBe(true);
    expect(c.puts.map((p) => p.body.type)).toEqual(["request_parameter", "metric", "metric", "metric", "metric"]);
    expect(c.puts.filter((p) => p.body.type === "metric").every((p) => Object.keys(p.body).join() === "type,metric" && typeof p.body.metric === "string")).toBe(true);
    const metrics = c.metrics();
    expect(metrics.map((m) => Object.keys(m).join())).toEqual(Array(4).fill("parameter_id,trial_job_id,type,sequence,value"));
    expect(metrics.map(({ value, ...rest }) => rest)).toEqual([
      { parameter_id: 7, trial_job_id: "Ab3xY", type: "PERIODICAL", sequence: 0 },
      { parameter_id: 7, trial_job_id: "Ab3xY", type: "PERIODICAL", sequence: 1 },
      { parameter_id: 7, trial_job_id: "Ab3xY", type: "PERIODICAL", sequence: 2 },
      { parameter_id: 7, trial_job_id: "Ab3xY", type: "FINAL", sequence: 0 },
    ]);
    // the value is a JSON string inside the JSON string of the metric: encoded twice
    expect(metrics.map((m) => typeof m.value)).toEqual(["string", "string", "string", "string"]);
    expect(metrics[0]?.value).toBe('{"default":0.61,"step":0,"max_steps":3,"metrics":{"train_loss":1.2,"val_acc":0.61},"non_finite":false}');
    expect(metrics.slice(0, 3).map((m) => JSON.parse(m.value as string))).toEqual(payloads.map((p) => ({ default: p.metrics.val_acc, ...p })));
    expect(metrics[3]?.value).toBe("0.8");
    expect(c.paths.every((p) => p.endsWith(" /trial-channel/Ab3xY"))).toBe(true);
    expect(warned).toEqual([]);
  });

  it("takes parameter_id from the parameter record (NNI_PARAMETER_ID may be absent) and trial_job_id from NNI_TRIAL_JOB_ID", async () => {
    const c = await channel({ parameter: { ...PARAMETER, parameter_id: 12 } });
    const { t } = await open(c, {}, { NNI_TRIAL_JOB_ID: "Zq9" });
    await t.report(epoch(0, { train_acc: 0.5 }));
    expect(c.metrics()[0]).toMatchObject({ parameter_id: 12, trial_job_id: "Zq9", sequence: 0 });
  });

  it("writes a non-finite default as Python's json.dumps does (bare NaN), the payload's own non-finite values as null", async () => {
    const c = await channel();
    const { t } = await open(c);
    await t.report({ step: 0, metrics: { val_acc: Number.NaN, train_loss: Number.POSITIVE_INFINITY }, non_finite: true });
    await t.final(Number.NaN);
    const [first, final] = c.metrics();
    expect(first?.value).toBe('{"default":NaN,"step":0,"metrics":{"val_acc":null,"train_loss":null},"non_finite":true}');
    expect(parseJson(first?.value as string)).toEqual({ default: null, step: 0, metrics: { val_acc: null, train_loss: null }, non_finite: true });
    expect(final?.value).toBe("NaN");
  });

  it("chooses default: val_acc, else train_acc, else -val_loss, else -train_loss, and keeps its first choice", async () => {
    const c = await channel();
    const { t } = await open(c);
    await t.report(epoch(0, { train_loss: 2 }));
    await t.report(epoch(1, { train_loss: 1.5, val_acc: 0.4 })); // val_acc appears late: the curve keeps meaning -train_loss
    await t.report({ step: 2 });
    expect(c.metrics().map((m) => (JSON.parse((m.value as string).replace("NaN", "null")) as { default: unknown }).default)).toEqual([-2, -1.5, null]);

    const c2 = await channel();
    const { t: t2 } = await open(c2);
    await t2.report(epoch(0, { train_loss: 2, val_loss: 3, train_acc: 0.2 }));
    const c3 = await channel();
    const { t: t3 } = await open(c3);
    await t3.report(epoch(0, { train_loss: 2, val_loss: 3 }));
    expect(JSON.parse(c2.metrics()[0]?.value as string)).toMatchObject({ default: 0.2 });
    expect(JSON.parse(c3.metrics()[0]?.value as string)).toMatchObject({ default: -3 });
  });

  it("uses the metric option: a metric name as is, or a function of the payload; a final object keeps default first", async () => {
    const c = await channel();
    const { t } = await open(c, { metric: "val_loss" });
    await t.report(epoch(0, { val_loss: 0.7, val_acc: 0.9 }));
    const c2 = await channel();
    const { t: t2 } = await open(c2, { metric: (p) => (p.metrics?.val_acc ?? 0) * 100 });
    await t2.report(epoch(0, { val_loss: 0.7, val_acc: 0.9 }));
    await t2.final({ default: 91, val_loss: 0.6 });
    expect(JSON.parse(c.metrics()[0]?.value as string)).toMatchObject({ default: 0.7 });
    expect(JSON.parse(c2.metrics()[0]?.value as string)).toMatchObject({ default: 90 });
    expect(c2.metrics()[1]?.value).toBe('{"default":91,"val_loss":0.6}');
  });

  it("a closed channel (410): params {} with one warning, and reports still answer stop=false", async () => {
    const c = await channel({ closed: true });
    const { t, warned } = await open(c);
    expect(t.params).toEqual({});
    expect(await t.report(epoch(0, { train_loss: 1 }))).toEqual({ stop: false });
    await t.final(1);
    expect(warned.length).toBe(2);
    expect(warned[0]).toMatch(/channel is closed/);
    expect(warned[1]).toMatch(/HTTP 410 \(channel closed\)/);
  });

  it("fails open when metrics cannot be delivered: an error status, or the manager gone (one warning per kind)", async () => {
    const c = await channel({ parameter: PARAMETER, metricStatus: 500 });
    const { t, warned } = await open(c);
    expect(await t.report(epoch(0, { train_loss: 1 }))).toEqual({ stop: false });
    expect(await t.report(epoch(1, { train_loss: 1 }))).toEqual({ stop: false });
    expect(warned).toEqual([expect.stringMatching(/HTTP 500; metrics are not reaching NNI/)]);

    const c2 = await channel();
    const { t: t2, warned: warned2 } = await open(c2, { timeoutMs: 500 });
    await c2.stop();
    const started = Date.now();
    expect(await t2.report(epoch(0, { train_loss: 1 }))).toEqual({ stop: false });
    await t2.final(0.5);
    expect(Date.now() - started).toBeLessThan(1500);
    expect(warned2).toEqual([expect.stringMatching(/could not send a metric/)]);
  });

  it("sends a metric once more when its connection is closed under it (a kept-alive connection the manager timed out), so no result goes missing", async () => {
    const c = await channel({ parameter: PARAMETER, dropMetricRequests: 1 });
    const { t, warned } = await open(c);
    for (const step of [0, 1, 2]) expect(await t.report(epoch(step, { val_acc: 0.5 }))).toEqual({ stop: false });
    expect(c.metrics().map((m) => [m.type, m.sequence])).toEqual([
      ["PERIODICAL", 0],
      ["PERIODICAL", 1],
      ["PERIODICAL", 2],
    ]);
    expect(warned).toEqual([]);

    // once more only: a channel that keeps failing costs one warning, and the trial goes on (fail open)
    const c2 = await channel({ parameter: PARAMETER, dropMetricRequests: 2 });
    const { t: t2, warned: warned2 } = await open(c2);
    expect(await t2.report(epoch(0, { val_acc: 0.5 }))).toEqual({ stop: false });
    expect(await t2.report(epoch(1, { val_acc: 0.5 }))).toEqual({ stop: false });
    expect(c2.metrics().map((m) => m.sequence)).toEqual([1]);
    expect(warned2).toEqual([expect.stringMatching(/could not send a metric .*metrics are not reaching NNI/)]);
  });

  it("refuses a channel that is not HTTP and a channel that does not answer the parameter request", async () => {
    await expect(trial({ env: { NNI_TRIAL_COMMAND_CHANNEL: "file:///tmp/x", NNI_TRIAL_JOB_ID: "a" }, signals: false })).rejects.toThrow(/must be an http:\/\/ URL/);
    const c = await channel();
    const url = c.url;
    await c.stop();
    await expect(trial({ env: { NNI_TRIAL_COMMAND_CHANNEL: url, NNI_TRIAL_JOB_ID: "a" }, signals: false })).rejects.toThrow(/could not request parameters/);
  });

  it("in a real trial process: NNI's kill (SIGINT) sets shouldStop, the script sends FINAL, and the process then ends by SIGINT (not SUCCEEDED in NNI)", async () => {
    const c = await channel();
    const run = runTrain({ payloads: [epoch(0, { val_acc: 0.3 })], waitForStop: true, final: 0.3 }, nniEnv(c));
    const opened = await run.next("open");
    expect(opened).toMatchObject({ host: "nni", id: "Ab3xY", params: PARAMETER.parameters });
    await run.next("training");
    run.child.kill("SIGINT");
    // NNI 3.0 records exit code 0 as SUCCEEDED; only a death by signal is recorded as stopped (USER_CANCELED/EARLY_STOPPED)
    expect(await run.exited).toEqual({ code: null, signal: "SIGINT" });
    expect(run.events.find((e) => e.event === "stopped")).toMatchObject({ reason: "SIGINT received" });
    expect(run.events.find((e) => e.event === "final")).toMatchObject({ shouldStop: true }); // the script ran to its end
    expect(c.metrics().map((m) => [m.type, m.sequence])).toEqual([
      ["PERIODICAL", 0],
      ["FINAL", 0],
    ]);
    expect(warnings(run.stderr())).toEqual([]);
  });

  it("in a real trial process that was not stopped: FINAL, then exit code 0 (SUCCEEDED in NNI)", async () => {
    const c = await channel();
    const run = runTrain({ payloads: [epoch(0, { val_acc: 0.3 }), epoch(1, { val_acc: 0.5 })], final: 0.5 }, nniEnv(c));
    expect(await run.exited).toEqual({ code: 0, signal: null });
    expect(run.events.find((e) => e.event === "final")).toMatchObject({ shouldStop: false });
    expect(c.metrics().map((m) => [m.type, m.sequence])).toEqual([
      ["PERIODICAL", 0],
      ["PERIODICAL", 1],
      ["FINAL", 0],
    ]);
  });
});
