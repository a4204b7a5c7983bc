// A task's key, "job id/index": the one format both sides use (the scheduler's node and placement
// bookkeeping, the agent's running-task table). Job ids hold no "/".

export function taskKey(jobId: string, taskIndex: number): string {
  return `${jobId}/${taskIndex}`;
}

/** The job id and task index a task key names (the inverse of taskKey). */
export function parseTaskKey(key: string): { jobId: string; taskIndex: number } {
  const slash = key.lastIndexOf("/");
  return { jobId: key.slice(0, slash), taskIndex: Number(key.slice(slash + 1)) };
}
