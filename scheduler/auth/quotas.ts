// Per-tenant quotas (kernels by count and bytes, tasks of unfinished jobs, input bytes held for
// unfinished jobs), kernel registrations per tenant, kernel deletion and the expiry of kernels
// no job has used for kernelTtlS. A refusal is RESOURCE_EXHAUSTED naming the quota, its limit
// and the use; retrying does not help until the use drops, and the message says so.
import type { SchedulerConfig } from "../../common/config.js";
import { failedPrecondition, notFound, resourceExhausted } from "../../common/errors.js";
import type { Logger } from "../../common/logger.js";
import type { StoredKernel } from "../backends/types.js";
import type { SchedulerCore } from "../core.js";
import type { JobRecord } from "../model.js";
import { DEFAULT_TENANT } from "./principal.js";

export interface QuotaLimits {
  kernels: number;
  kernelBytes: number;
  queuedTasks: number;
  jobBytes: number;
  outputBytes: number;
}

type QuotaConfig = Pick<SchedulerConfig, "quotaKernels" | "quotaKernelBytes" | "quotaQueuedTasks" | "quotaJobBytes" | "quotaOutputBytes" | "tenantQuotas" | "kernelTtlS">;

export function limitsFor(config: QuotaConfig, tenant: string): QuotaLimits {
  const own = config.tenantQuotas[tenant] ?? {};
  return {
    kernels: own.kernels ?? config.quotaKernels,
    kernelBytes: own.kernelBytes ?? config.quotaKernelBytes,
    queuedTasks: own.queuedTasks ?? config.quotaQueuedTasks,
    jobBytes: own.jobBytes ?? config.quotaJobBytes,
    outputBytes: own.outputBytes ?? config.quotaOutputBytes,
  };
}

const tenantOf = (job: JobRecord): string => job.tenant ?? DEFAULT_TENANT;

export function exceeded(tenant: string, quota: keyof QuotaLimits, limit: number, inUse: number, adding: number, howToFree: string) {
  return resourceExhausted(
    `tenant ${tenant}: quota ${quota} exceeded: limit ${limit}, in use ${inUse}, this request needs ${adding} more. ` +
      `Retrying will not help until the use drops (${howToFree}) or an admin raises the limit (quota${quota[0]!.toUpperCase()}${quota.slice(1)} / tenantQuotas).`,
  );
}

/** Unfinished tasks and held input bytes of a tenant's unfinished jobs. */
export function jobUsage(core: Pick<SchedulerCore, "unfinishedJobs">, tenant: string): { tasks: number; bytes: number } {
  let tasks = 0;
  let bytes = 0;
  for (const j of core.unfinishedJobs()) {
    if (tenantOf(j) !== tenant) continue;
    const c = j.counts;
    tasks += j.tasks.length - c.TASK_STATE_SUCCEEDED - c.TASK_STATE_FAILED - c.TASK_STATE_CANCELLED;
    bytes += j.inputBytes ?? 0;
  }
  return { tasks, bytes };
}

/** How often an in-use registration's last-use time is written back (a submit per ms must not be a store write per ms). */
const TOUCH_EVERY_MS = 60_000;

export class TenantQuotas {
  /** Per-tenant chain of kernel registrations and deletions: the quota check and the write are one step. */
  private readonly locks = new Map<string, Promise<unknown>>();
  /** "<tenant>/<kernelId>" → when its use was last written to the store. */
  private readonly touched = new Map<string, number>();
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly config: QuotaConfig,
    private readonly core: SchedulerCore,
    private readonly log: Logger,
  ) {
    core.admit = (job) => this.admitJob(job);
  }

  private locked<T>(tenant: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(tenant) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => undefined);
    this.locks.set(tenant, tail);
    void tail.then(() => {
      if (this.locks.get(tenant) === tail) this.locks.delete(tenant);
    });
    return next;
  }

  /** Refuses a job that would take the tenant past its queuedTasks or jobBytes quota. */
  admitJob(job: JobRecord): void {
    const tenant = tenantOf(job);
    const limits = limitsFor(this.config, tenant);
    const use = jobUsage(this.core, tenant);
    const bytes = job.inputBytes ?? 0;
    const howToFree = "wait for its jobs to finish or cancel some";
    if (use.tasks + job.tasks.length > limits.queuedTasks) throw exceeded(tenant, "queuedTasks", limits.queuedTasks, use.tasks, job.tasks.length, howToFree);
    if (use.bytes + bytes > limits.jobBytes) throw exceeded(tenant, "jobBytes", limits.jobBytes, use.bytes, bytes, howToFree);
  }

  /**
   * The kernel quotas checked before the (costly) validation of a new kernel's bytes. Not final:
   * saveKernel checks again under the tenant's lock.
   */
  async precheckKernel(tenant: string, kernelId: string, sizeBytes: number): Promise<void> {
    const store = this.core.store;
    if (await store.getKernelRegistration(tenant, kernelId)) return;
    this.checkKernelRoom(tenant, await store.listKernelRegistrations(tenant), sizeBytes);
  }

  private checkKernelRoom(tenant: string, held: { sizeBytes: number }[], sizeBytes: number): void {
    const limits = limitsFor(this.config, tenant);
    const heldBytes = held.reduce((s, r) => s + r.sizeBytes, 0);
    const howToFree = "delete kernels it no longer needs with DeleteKernel / `distx kernel delete`";
    if (held.length + 1 > limits.kernels) throw exceeded(tenant, "kernels", limits.kernels, held.length, 1, howToFree);
    if (heldBytes + sizeBytes > limits.kernelBytes) throw exceeded(tenant, "kernelBytes", limits.kernelBytes, heldBytes, sizeBytes, howToFree);
  }

  /**
   * Stores a kernel's bytes (once per sha256) and the tenant's registration of them, inside the
   * tenant's kernels and kernelBytes quotas. created: false when the tenant held it already.
   */
  saveKernel(tenant: string, kernel: StoredKernel): Promise<{ created: boolean }> {
    return this.locked(tenant, async () => {
      const store = this.core.store;
      const now = Date.now();
      const reg = { tenant, kernelId: kernel.kernelId, name: kernel.name, sizeBytes: kernel.sizeBytes, registeredAtMs: now, lastUsedAtMs: now };
      if (await store.getKernelRegistration(tenant, kernel.kernelId)) {
        await store.putKernelRegistration(reg); // registering again is a use
        return { created: false };
      }
      // The quota is checked before the bytes are stored: a refused kernel costs the store nothing.
      this.checkKernelRoom(tenant, await store.listKernelRegistrations(tenant), kernel.sizeBytes);
      for (let attempt = 0; attempt < 3; attempt++) {
        await store.putKernel(kernel);
        // undefined: the last other holder deleted the bytes between the two writes; store them again.
        const r = await store.putKernelRegistration(reg);
        if (r) return r;
      }
      throw new Error(`kernel ${kernel.kernelId} kept vanishing while it was registered; retry`);
    });
  }

  /**
   * Checks that the tenant holds the kernel before a job uses it (NOT_FOUND otherwise, as for a
   * kernel that does not exist) and records the use.
   */
  async useKernel(tenant: string, kernelId: string): Promise<void> {
    const key = `${tenant}/${kernelId}`;
    const now = Date.now();
    const last = this.touched.get(key);
    if (last !== undefined && now - last < TOUCH_EVERY_MS) return;
    const reg = await this.core.store.getKernelRegistration(tenant, kernelId);
    if (!reg) throw notFound(`unknown kernel ${kernelId}: register it with RegisterKernel first`);
    await this.core.store.touchKernelRegistration(tenant, kernelId, now);
    if (this.touched.size >= 100_000) this.touched.clear();
    this.touched.set(key, now);
  }

  /** An unfinished job of the tenant that uses the kernel, if any. */
  private userOf(tenant: string, kernelId: string): JobRecord | undefined {
    for (const j of this.core.unfinishedJobs()) if (j.kernelId === kernelId && tenantOf(j) === tenant) return j;
    return undefined;
  }

  deleteKernel(tenant: string, kernelId: string): Promise<{ contentDeleted: boolean }> {
    return this.locked(tenant, async () => {
      const user = this.userOf(tenant, kernelId);
      if (user && (await this.core.store.getKernelRegistration(tenant, kernelId))) {
        throw failedPrecondition(`kernel ${kernelId} is used by unfinished job ${user.id}; cancel it or wait for it to finish, then retry`);
      }
      const r = await this.core.store.deleteKernelRegistration(tenant, kernelId);
      if (!r.deleted) throw notFound(`unknown kernel ${kernelId}`);
      this.touched.delete(`${tenant}/${kernelId}`);
      this.log.info({ event: "kernel_deleted", tenant, kernelId, contentDeleted: r.contentDeleted }, "kernel registration deleted");
      return { contentDeleted: r.contentDeleted };
    });
  }

  /** Removes registrations no job has used for kernelTtlS (those an unfinished job uses stay). Returns how many went. */
  async sweepKernels(nowMs = Date.now()): Promise<number> {
    if (this.config.kernelTtlS <= 0) return 0;
    const stale = await this.core.store.staleKernelRegistrations(nowMs - this.config.kernelTtlS * 1000, 1000);
    let removed = 0;
    for (const { tenant, kernelId } of stale) {
      const gone = await this.locked(tenant, async () => {
        if (this.userOf(tenant, kernelId)) return false;
        // Used since it was listed (a touch not yet written back counts too)?
        const touched = this.touched.get(`${tenant}/${kernelId}`);
        if (touched !== undefined && touched >= nowMs - this.config.kernelTtlS * 1000) return false;
        const r = await this.core.store.deleteKernelRegistration(tenant, kernelId);
        this.touched.delete(`${tenant}/${kernelId}`);
        if (r.deleted) this.log.info({ event: "kernel_expired", tenant, kernelId, contentDeleted: r.contentDeleted }, `kernel unused for ${this.config.kernelTtlS} s removed`);
        return r.deleted;
      });
      if (gone) removed++;
    }
    return removed;
  }

  start(): void {
    if (this.config.kernelTtlS <= 0) return;
    const every = Math.min(60_000, Math.max(1000, (this.config.kernelTtlS * 1000) / 10));
    this.timer = setInterval(() => {
      this.sweepKernels().catch((err: Error) => this.log.warn({ event: "kernel_sweep_failed", err: err.message }, "kernel expiry sweep failed"));
    }, every);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
