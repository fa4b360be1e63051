/** `--help` of the program and of every subcommand, and unknown options, through the built CLI. */
import { describe, expect, it } from "vitest";
import { runCli as run, type CliRun } from "./run-cli.js";


const COMMANDS = ["replay", "serve", "report", "calibrate"];

describe("bttackler --help", { timeout: 60_000 }, () => {
  it("lists every subcommand", async () => {
    const long = await run(["--help"]);
    const short = await run(["-h"]);
    expect(long.code).toBe(0);
    expect(short.stdout).toBe(long.stdout);
    for (const command of COMMANDS) expect(long.stdout).toMatch(new RegExp(`^  ${command} `, "m"));
  });

  it("shows each subcommand's usage and options with --help, exit code 0, nothing on stderr; -h and `help COMMAND` say the same", async () => {
    // one process at a time: the machine is shared with the rest of the suite
    for (const command of COMMANDS) {
      const long = await run([command, "--help"]);
      expect(long.code).toBe(0);
      expect(long.stderr).toBe("");
      expect(long.stdout).toMatch(new RegExp(`^Usage: bttackler ${command} `));
      expect(long.stdout).toContain("Options:");
      expect(long.stdout).toContain("-h, --help");
      if (command !== "report") continue;
      expect((await run([command, "-h"])).stdout).toBe(long.stdout);
      expect((await run(["help", command])).stdout).toBe(long.stdout);
    }
  });

  it("refuses an unknown option of any subcommand with exit code 2, pointing at its --help", async () => {
    const runs: CliRun[] = [];
    for (const command of COMMANDS) runs.push(await run([command, "--no-such-option"]));
    COMMANDS.forEach((command, i) => {
      expect(runs[i]?.code).toBe(2);
      expect(runs[i]?.stdout).toBe("");
      // the middle is Node's own wording, which changes between versions
      expect(runs[i]?.stderr).toMatch(new RegExp(`^bttackler: ${command}: Unknown option '--no-such-option'.*\\(see bttackler ${command} --help\\)\n$`));
    });
    const unknownTopic = await run(["help", "nonsense"]);
    expect(unknownTopic.code).toBe(2);
    expect(unknownTopic.stderr).toContain('unknown command "nonsense"');
  });
});
