// The start of GRPO waiting for the fleet: `--await-workers rollout=2,reward=1` holds the run's first GRPO batch until
// that many workers of each role are connected, or until `--await-seconds` have passed since it could have opened.
// Without it GRPO starts with whoever is connected when the warm start ends, and a worker whose connection attempt
// came a moment late misses the first versions (a tiny run's whole GRPO phase can take less than a reconnect backoff).

export type AwaitedRole = 'ROLLOUT' | 'REWARD';

export interface AwaitWorkers {
  /** Workers of each role to wait for. */
  counts: Partial<Record<AwaitedRole, number>>;
  /** How long GRPO's first batch waits for them at most, from when it could have opened. */
  ms: number;
}

const ROLE_OF: Record<string, AwaitedRole> = { rollout: 'ROLLOUT', reward: 'REWARD' };

/** Parses `rollout=2,reward=1` (either role may be left out); `flag` names the option in errors. */
export function parseAwaitWorkers(spec: string, seconds: number, flag = '--await-workers'): AwaitWorkers {
  const counts: AwaitWorkers['counts'] = {};
  for (const part of spec.split(',').map((p) => p.trim()).filter((p) => p !== '')) {
    const m = /^([a-z]+)=(\d+)$/.exec(part);
    const role = m ? ROLE_OF[m[1]!] : undefined;
    if (!m || !role) throw new Error(`${flag}: "${part}" is not ROLE=COUNT with ROLE rollout or reward (e.g. rollout=2,reward=1)`);
    if (counts[role] !== undefined) throw new Error(`${flag}: ${m[1]} is given twice`);
    counts[role] = Number(m[2]);
  }
  if (!(Number.isFinite(seconds) && seconds >= 0)) throw new Error(`--await-seconds: ${seconds} is not a number of seconds >= 0`);
  return { counts, ms: seconds * 1000 };
}

/** The roles still short of their count, as `1 of 2 rollout` phrases; empty when every count is met. */
export function missingWorkers(a: AwaitWorkers, connected: (role: AwaitedRole) => number): string[] {
  return (Object.entries(a.counts) as Array<[AwaitedRole, number]>)
    .filter(([role, n]) => connected(role) < n)
    .map(([role, n]) => `${connected(role)} of ${n} ${role.toLowerCase()}`);
}
