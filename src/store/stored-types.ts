/**
 * What a service's durable log holds, as the store writes it and every reader reads it back
 * (SqliteStore, StudyLogReader, the study registry, the report): the types only, so that the
 * writer and the readers share them without importing each other.
 */
import type { StudyConfig, TrialEndState } from "../diagnosis/types.js";

/** How a payload row's body is written: the payload's JSON, or a JSON-RPC request with the payload at params.payload. */
export type BodyFormat = "payload" | "request";

export type StoredEvent =
  | { study: string; trial: string; kind: "payload"; step: number; body: string; format: BodyFormat; verdict: string }
  | { study: string; trial: string; kind: "end"; state: TrialEndState };

export interface StoredStudy {
  study: string;
  config: StudyConfig;
  created_at: string;
}

/** What the service needs from its durable log. */
export interface EventStore {
  studies(): StoredStudy[];
  events(study: string): Iterable<StoredEvent>;
  saveStudy(study: string, config: StudyConfig, createdAt: string): Promise<void>;
  append(event: StoredEvent): Promise<void>;
  whenCommitted(): Promise<void>;
  close(): Promise<void>;
}
