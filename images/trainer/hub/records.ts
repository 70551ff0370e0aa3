// The records the task book keeps: a question group, its tasks (one per episode), their leases
// and scored results. Plain data; the book (book.ts) owns every change to them.
import { type l0 } from "../../../lib/proto.js";
import { type Question } from "./dataset.js";
import { type TrajectoryScore } from "./reward.js";

export type TaskStatus = "queued" | "backoff" | "leased" | "done" | "dropped";
export type GroupStatus = "open" | "complete" | "dropped" | "served";

export interface Scored {
  trajectory: l0.v1.ITrajectory;
  score: TrajectoryScore;
}

export interface GroupRec {
  id: string;
  question: Question;
  eval: boolean;
  tasks: TaskRec[];
  done: number;
  status: GroupStatus;
  dropReason?: string;
  dropDetail?: string;
}

export interface LeaseRec {
  id: string;
  task: TaskRec;
  workerId: string;
  deadline: number;
  version: number;
  active: boolean;
}

export interface TaskRec {
  id: string;
  group: GroupRec;
  status: TaskStatus;
  /** Leases handed out so far. */
  attempts: number;
  /** Infrastructure failures and expired leases so far (bounded by maxAttempts). */
  failures: number;
  lease?: LeaseRec;
  queuedAt: number;
  /** Bumped on every enqueue, so an older queue entry for this task is recognised as stale. */
  qseq: number;
  result?: Scored;
}
