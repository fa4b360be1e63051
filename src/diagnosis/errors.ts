/** An event the engine cannot accept (a step out of order, a report after the trial ended). Nothing is changed when it is thrown. */
export class EngineInputError extends Error {
  override readonly name = "EngineInputError";
}
