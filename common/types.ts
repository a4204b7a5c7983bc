// Re-exports of the generated wire types under short names, so the rest of the code
// imports from one place. Only types cross this boundary; values come from the .proto at run time.
export type { Job__Output as Job, Job as JobIn } from "../generated/proto/distributex/v1/Job.js";
export type { JobEvent as JobEventIn, JobEvent__Output as JobEvent } from "../generated/proto/distributex/v1/JobEvent.js";
export type { TaskEvent__Output as TaskEvent, TaskEvent as TaskEventIn } from "../generated/proto/distributex/v1/TaskEvent.js";
export type { TaskResult__Output as TaskResult, TaskResult as TaskResultIn } from "../generated/proto/distributex/v1/TaskResult.js";
export type { TaskError__Output as TaskError } from "../generated/proto/distributex/v1/TaskError.js";
export type { TaskError as TaskErrorIn } from "../generated/proto/distributex/v1/TaskError.js";
export type { Node__Output as Node, Node as NodeIn } from "../generated/proto/distributex/v1/Node.js";
export type { NodeLoad__Output as NodeLoad, NodeLoad as NodeLoadIn } from "../generated/proto/distributex/v1/NodeLoad.js";
export type { HardwareProfile__Output as HardwareProfile, HardwareProfile as HardwareProfileIn } from "../generated/proto/distributex/v1/HardwareProfile.js";
export type { ResourceRequest__Output as ResourceRequest } from "../generated/proto/distributex/v1/ResourceRequest.js";
export type { Assignment__Output as Assignment, Assignment as AssignmentIn } from "../generated/proto/distributex/v1/Assignment.js";
export type { Cancellation__Output as Cancellation, Cancellation as CancellationIn } from "../generated/proto/distributex/v1/Cancellation.js";
export type { TaskUpdate__Output as TaskUpdate, TaskUpdate as TaskUpdateIn } from "../generated/proto/distributex/v1/TaskUpdate.js";
export type { AgentMessage__Output as AgentMessage, AgentMessage as AgentMessageIn } from "../generated/proto/distributex/v1/AgentMessage.js";
export type { SchedulerMessage__Output as SchedulerMessage, SchedulerMessage as SchedulerMessageIn } from "../generated/proto/distributex/v1/SchedulerMessage.js";
export type { KernelInfo__Output as KernelInfo, KernelInfo as KernelInfoIn } from "../generated/proto/distributex/v1/KernelInfo.js";
export type { SubmitJobRequest__Output as SubmitJobRequest, SubmitJobRequest as SubmitJobRequestIn } from "../generated/proto/distributex/v1/SubmitJobRequest.js";
export type { SubmitJobChunk__Output as SubmitJobChunk, SubmitJobChunk as SubmitJobChunkIn } from "../generated/proto/distributex/v1/SubmitJobChunk.js";
export type { KernelKind__Output as KernelKind } from "../generated/proto/distributex/v1/KernelKind.js";
export type { JobState__Output as JobState } from "../generated/proto/distributex/v1/JobState.js";
export type { TaskState__Output as TaskState } from "../generated/proto/distributex/v1/TaskState.js";
export type { NodeState__Output as NodeState } from "../generated/proto/distributex/v1/NodeState.js";
export type { Alert__Output as Alert, Alert as AlertIn } from "../generated/proto/distributex/v1/Alert.js";
export type { DistributeXClient as DistributeXGrpcClient } from "../generated/proto/distributex/v1/DistributeX.js";
export type { DistributeXHandlers } from "../generated/proto/distributex/v1/DistributeX.js";
export type { AgentServiceClient as AgentServiceGrpcClient, AgentServiceHandlers } from "../generated/proto/distributex/v1/AgentService.js";

export const TERMINAL_JOB_STATES: ReadonlySet<string> = new Set([
  "JOB_STATE_SUCCEEDED",
  "JOB_STATE_FAILED",
  "JOB_STATE_CANCELLED",
]);

/** Short display names: JOB_STATE_RUNNING → running. */
export function shortState(state: string): string {
  return state.replace(/^(JOB|TASK|NODE)_STATE_/, "").toLowerCase();
}
export type { JobSubmission__Output as JobSubmission, JobSubmission as JobSubmissionIn } from "../generated/proto/distributex/v1/JobSubmission.js";
export type { TokenInfo__Output as TokenInfo, TokenInfo as TokenInfoIn } from "../generated/proto/distributex/v1/TokenInfo.js";
