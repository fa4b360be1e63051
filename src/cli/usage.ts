/** A command line that cannot be run as given; the CLI prints its message and exits with code 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}
