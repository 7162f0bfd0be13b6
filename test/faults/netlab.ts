// A private network of Linux network namespaces for the network-fault suite: one namespace per host, each
// joined by a veth pair to a bridge this lab creates, addresses of the project's own (10.213.0.0/24). Faults
// are injected on a host's link: cut (the bridge side of its veth down: packets vanish, TCP retransmits, no
// RST), heal, and impair (latency + loss). Every name carries a random tag, so a leftover of a crashed run never
// collides with a new one, and destroy() removes what this lab made (processes left in its namespaces included).
//
// Latency and loss use `tc netem` where the kernel has it (sch_netem). Where it does not (the 6.18 kernel this
// was written on is built without CONFIG_NET_SCH_NETEM, and has no modules to load), loss is an nftables rule
// in the host's namespace (`numgen random mod 100 < P drop`, real packet loss that TCP must repair) and latency
// is added by a delaying TCP relay (test/faults/delay-relay.ts) the host's NATS connection goes through.
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';

export const SUBNET = '10.213.0';

export interface NetHost {
  name: string;
  ns: string;
  addr: string;
  /** The veth end on the bridge (in the root namespace): cut/heal act here. */
  bridgeEnd: string;
  /** The veth end inside the namespace. */
  nsEnd: string;
}

export interface Impairment {
  /** Added one-way delay, each direction, ms. */
  delayMs: number;
  /** Packets dropped, each direction, percent. */
  lossPercent: number;
  /** Only traffic to and from this address (the fallback's nftables rule); netem impairs the whole link. */
  peer: string;
}

const sh = (cmd: string, args: string[], input?: string) => execFileSync(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], input });
const ok = (cmd: string, args: string[]) => spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;

/**
 * Why this machine cannot run the suite, or null when it can: root, iproute2, network namespaces, veth and
 * bridge links. Checked by doing it (a throwaway namespace and link), not by reading capabilities.
 */
export function netnsUnavailable(): string | null {
  if (process.platform !== 'linux') return `network namespaces need Linux (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return 'network namespaces need root (run as root, or in a privileged container)';
  if (!ok('ip', ['-V'])) return 'iproute2 (`ip`) is not installed (bash scripts/faults/ensure-tools.sh installs it)';
  if (!ok('openssl', ['version'])) return 'openssl is not installed (bash scripts/faults/ensure-tools.sh installs it)';
  if (!ok('nft', ['--version'])) return 'nftables (`nft`) is not installed (bash scripts/faults/ensure-tools.sh installs it)';
  const tag = randomBytes(3).toString('hex');
  const ns = `rgf-probe-${tag}`;
  try {
    if (!ok('ip', ['netns', 'add', ns])) return '`ip netns add` failed (no CAP_SYS_ADMIN? an unprivileged container?)';
    if (!ok('ip', ['link', 'add', `rgp${tag}`, 'type', 'veth', 'peer', 'name', `rgq${tag}`])) return 'cannot create a veth pair (no veth support?)';
    if (!ok('ip', ['link', 'set', `rgq${tag}`, 'netns', ns])) return 'cannot move a veth end into a namespace';
    if (!ok('ip', ['link', 'add', `rgb${tag}`, 'type', 'bridge'])) return 'cannot create a bridge (no bridge support?)';
    return null;
  } finally {
    spawnSync('ip', ['link', 'del', `rgp${tag}`], { stdio: 'ignore' });
    spawnSync('ip', ['link', 'del', `rgb${tag}`], { stdio: 'ignore' });
    spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  }
}

/** Whether `tc qdisc add ... netem` works here (the kernel has sch_netem, built in or loadable). */
export function netemAvailable(): boolean {
  spawnSync('modprobe', ['sch_netem'], { stdio: 'ignore' }); // harmless where modprobe or the module is missing
  const tag = randomBytes(3).toString('hex');
  try {
    if (!ok('ip', ['link', 'add', `rgn${tag}`, 'type', 'veth', 'peer', 'name', `rgm${tag}`])) return false;
    return ok('tc', ['qdisc', 'add', 'dev', `rgn${tag}`, 'root', 'netem', 'delay', '1ms']);
  } finally {
    spawnSync('ip', ['link', 'del', `rgn${tag}`], { stdio: 'ignore' });
  }
}

export class NetLab {
  readonly tag = randomBytes(2).toString('hex');
  readonly bridge = `rgf${this.tag}br`;
  readonly hosts = new Map<string, NetHost>();
  readonly netem = netemAvailable();
  private destroyed = false;

  /** Creates the bridge and one namespace per host name, addresses .2, .3, ... in host order. */
  constructor(names: string[]) {
    try {
      sh('ip', ['link', 'add', this.bridge, 'type', 'bridge']);
      sh('ip', ['link', 'set', this.bridge, 'up']);
      names.forEach((name, i) => this.addHost(name, i));
    } catch (e) {
      this.destroy();
      throw e;
    }
  }

  private addHost(name: string, i: number): void {
    if (!/^[a-z0-9-]{1,20}$/.test(name)) throw new Error(`host name "${name}": use [a-z0-9-], at most 20 characters`);
    const h: NetHost = { name, ns: `rgf-${this.tag}-${name}`, addr: `${SUBNET}.${i + 2}`, bridgeEnd: `rgf${this.tag}h${i}`, nsEnd: `rgf${this.tag}n${i}` };
    this.hosts.set(name, h);
    sh('ip', ['netns', 'add', h.ns]);
    sh('ip', ['link', 'add', h.bridgeEnd, 'type', 'veth', 'peer', 'name', h.nsEnd]);
    sh('ip', ['link', 'set', h.nsEnd, 'netns', h.ns]);
    sh('ip', ['link', 'set', h.bridgeEnd, 'master', this.bridge, 'up']);
    sh('ip', ['-n', h.ns, 'addr', 'add', `${h.addr}/24`, 'dev', h.nsEnd]);
    sh('ip', ['-n', h.ns, 'link', 'set', h.nsEnd, 'up']);
    sh('ip', ['-n', h.ns, 'link', 'set', 'lo', 'up']);
  }

  host(name: string): NetHost {
    const h = this.hosts.get(name);
    if (!h) throw new Error(`no host "${name}" in the lab (hosts: ${[...this.hosts.keys()].join(', ')})`);
    return h;
  }

  /** The command line that runs `argv` inside the host's namespace. */
  inHost(name: string, argv: string[]): [string, string[]] {
    return ['ip', ['netns', 'exec', this.host(name).ns, ...argv]];
  }

  /** Cuts the host off from everyone: its link on the bridge goes down (packets to and from it are dropped). */
  cut(name: string): void {
    sh('ip', ['link', 'set', this.host(name).bridgeEnd, 'down']);
  }

  heal(name: string): void {
    sh('ip', ['link', 'set', this.host(name).bridgeEnd, 'up']);
  }

  /**
   * Latency and loss on the host's link. With netem: both ends of its veth (every packet to or from the host).
   * Without: loss only (an nftables rule on traffic with `peer`); the caller adds the latency with a relay.
   */
  impair(name: string, i: Impairment): void {
    const h = this.host(name);
    if (this.netem) {
      const netem = ['netem', 'delay', `${i.delayMs}ms`, 'loss', `${i.lossPercent}%`];
      sh('tc', ['qdisc', 'add', 'dev', h.bridgeEnd, 'root', ...netem]);
      sh('ip', ['netns', 'exec', h.ns, 'tc', 'qdisc', 'add', 'dev', h.nsEnd, 'root', ...netem]);
      return;
    }
    const p = Math.round(i.lossPercent);
    sh('ip', ['netns', 'exec', h.ns, 'nft', '-f', '-'], `table inet rgfault {
  chain out { type filter hook output priority 0; ip daddr ${i.peer} numgen random mod 100 < ${p} drop; }
  chain in { type filter hook input priority 0; ip saddr ${i.peer} numgen random mod 100 < ${p} drop; }
}\n`);
  }

  clearImpairment(name: string): void {
    const h = this.host(name);
    if (this.netem) {
      sh('tc', ['qdisc', 'del', 'dev', h.bridgeEnd, 'root']);
      sh('ip', ['netns', 'exec', h.ns, 'tc', 'qdisc', 'del', 'dev', h.nsEnd, 'root']);
    } else {
      sh('ip', ['netns', 'exec', h.ns, 'nft', 'delete', 'table', 'inet', 'rgfault']);
    }
  }

  /**
   * Removes everything the lab made: any process still inside one of its namespaces (SIGKILL, by pid), the
   * namespaces (which takes their veth ends, and so the pairs), and the bridge. Synchronous, so it can run
   * from a signal handler or an exit hook; safe to call twice.
   */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const h of this.hosts.values()) {
      const pids = spawnSync('ip', ['netns', 'pids', h.ns], { encoding: 'utf8' }).stdout ?? '';
      for (const pid of pids.split(/\s+/).filter(Boolean)) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          // already gone
        }
      }
      spawnSync('ip', ['link', 'del', h.bridgeEnd], { stdio: 'ignore' });
      spawnSync('ip', ['netns', 'del', h.ns], { stdio: 'ignore' });
    }
    spawnSync('ip', ['link', 'del', this.bridge], { stdio: 'ignore' });
  }

  /** What of this lab is still on the machine (empty after destroy()): for the tests' clean-up assertion. */
  leftovers(): string[] {
    const ns = (spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout ?? '').split('\n').map((l) => l.split(' ')[0]).filter((n) => n.startsWith(`rgf-${this.tag}-`));
    const links = (spawnSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }).stdout ?? '').split('\n').map((l) => l.split(': ')[1]?.split('@')[0] ?? '').filter((n) => n.startsWith(`rgf${this.tag}`));
    return [...ns, ...links];
  }
}
