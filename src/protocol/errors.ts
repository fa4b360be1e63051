/** JSON-RPC error codes of the service: the standard ones and the service's own (-32000 to -32099). */
export const RpcErrorCode = {
  ParseError: -32700,
  InvalidRequest: -32600,
  MethodNotFound: -32601,
  InvalidParams: -32602,
  InternalError: -32603,
  /** The study does not exist (every method that names a study, except study.open and the two reports, which create it). */
  UnknownStudy: -32001,
  /** The study has no report of the trial (assess, history, end), or the trial has no verdict at the step asked (assess). */
  UnknownTrial: -32002,
  /** The event cannot be accepted: a step older than the trial's latest, or a report after the trial ended. */
  RejectedEvent: -32003,
  /** study.open with a config that differs from the one the study's events were diagnosed with. */
  ConfigConflict: -32004,
  /** The event could not be stored; it was not acknowledged. */
  StorageFailure: -32005,
} as const;
