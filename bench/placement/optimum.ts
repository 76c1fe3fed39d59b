/**
 * The offline optimum of the router's objective (mean one-way delay over all pairs of the final
 * room), written independently of router/placement: its own delay function, its own sums.
 *
 *   delay(i on A, j on B) = (rtt_i(A) + R(A, B) + rtt_j(B)) / 2,  R(A, A) = 0
 *
 * Methods, best first:
 *   - exhaustive: every one of regions^n assignments (depth-first, pruned by the partial sum, which
 *     only grows since every delay is ≥ 0), for regions^n ≤ EXHAUSTIVE_LIMIT;
 *   - structured (exact): summed over ordered pairs the objective is
 *       (n − 1) Σ_i rtt_i(A_i) + ½ Σ_{A≠B} c_A c_B R(A, B),   c_A = participants on A,
 *     so it depends on the assignment only through the linear term and the head counts. People of
 *     one city differ by a constant (their access delay), hence are interchangeable: a dynamic
 *     programme over cities whose state is the head-count vector keeps the least linear cost per
 *     count vector, exactly; the quadratic term is added per final count vector;
 *   - bounded: coordinate descent from many starts (an upper bound) with a proven lower bound (each
 *     pair at its own best pair of regions), when the programme's state space is too large.
 */

export interface OptimumProblem {
  /** Region ids; indexes of `rtt` rows and of `inter`. */
  regions: readonly string[];
  /** `rtt[i][A]`: participant i's RTT to region A, ms. */
  rtt: readonly (readonly number[])[];
  /** `group[i]`: participants of one group (city) whose RTTs differ by a constant are interchangeable. */
  group: readonly number[];
  /** Symmetric inter-region RTT, 0 on the diagonal. */
  inter: readonly (readonly number[])[];
}

export type OptimumMethod = 'exhaustive' | 'structured' | 'bounded';

export interface OptimumResult {
  method: OptimumMethod;
  /** Exact optimum, or for 'bounded' the best assignment found (an upper bound). */
  meanMs: number;
  /** Region index per participant achieving `meanMs`. */
  assignment: number[];
  /** A proven lower bound ('bounded' only; equals meanMs when exact). */
  lowerBoundMs: number;
}

export const EXHAUSTIVE_LIMIT = 1_048_576; // 4^10
/** Dynamic-programme limits: transitions evaluated, and states per layer. */
const STRUCTURED_WORK_LIMIT = 60_000_000;
const STRUCTURED_STATE_LIMIT = 4_000_000;

export function pairDelayMs(p: OptimumProblem, i: number, a: number, j: number, b: number): number {
  return (p.rtt[i]![a]! + p.inter[a]![b]! + p.rtt[j]![b]!) / 2;
}

/** Mean over unordered pairs, by definition (O(n²)). */
export function meanPairwiseMs(p: OptimumProblem, assignment: readonly number[]): number {
  const n = assignment.length;
  let sum = 0;
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) sum += pairDelayMs(p, i, assignment[i]!, j, assignment[j]!);
  return sum / ((n * (n - 1)) / 2);
}

export function exhaustiveOptimum(p: OptimumProblem): OptimumResult {
  const n = p.rtt.length;
  const R = p.regions.length;
  if (R ** n > EXHAUSTIVE_LIMIT) throw new RangeError(`exhaustive search over ${R}^${n} assignments is past the ${EXHAUSTIVE_LIMIT} limit`);
  // Each participant tries its regions nearest first, so the first leaf is already a good bound.
  const order = p.rtt.map((row) => row.map((_, a) => a).sort((a, b) => row[a]! - row[b]!));
  const current = new Array<number>(n).fill(0);
  let best = Number.POSITIVE_INFINITY;
  let bestAssignment = current.slice();
  const visit = (i: number, partial: number) => {
    if (partial >= best) return;
    if (i === n) {
      best = partial;
      bestAssignment = current.slice();
      return;
    }
    for (const a of order[i]!) {
      let add = 0;
      for (let j = 0; j < i; j++) add += pairDelayMs(p, j, current[j]!, i, a);
      current[i] = a;
      visit(i + 1, partial + add);
    }
  };
  visit(0, 0);
  const meanMs = best / ((n * (n - 1)) / 2);
  return { method: 'exhaustive', meanMs, assignment: bestAssignment, lowerBoundMs: meanMs };
}

function binomial(n: number, k: number): number {
  let r = 1;
  for (let i = 1; i <= k; i++) r = (r * (n - k + i)) / i;
  return Math.round(r);
}

/** Every vector of `parts` non-negative integers summing to `total`. */
function compositions(total: number, parts: number): number[][] {
  if (parts === 1) return [[total]];
  const out: number[][] = [];
  for (let first = total; first >= 0; first--) for (const rest of compositions(total - first, parts - 1)) out.push([first, ...rest]);
  return out;
}

interface Group {
  members: number[];
  /** RTT to each region of the group's first member. */
  base: number[];
  /** Σ over members of (member's RTT − base), the same for every region. */
  offsetSum: number;
}

/** Groups by `group`, split where RTTs do not differ by a constant (so members really are interchangeable). */
function interchangeableGroups(p: OptimumProblem): Group[] {
  const groups: Group[] = [];
  const byKey = new Map<number, Group[]>();
  for (const [i, row] of p.rtt.entries()) {
    const candidates = byKey.get(p.group[i]!) ?? [];
    const fits = candidates.find((g) => row.every((v, a) => Math.abs(v - g.base[a]! - (row[0]! - g.base[0]!)) < 1e-9));
    if (fits) {
      fits.members.push(i);
      fits.offsetSum += row[0]! - fits.base[0]!;
    } else {
      const g = { members: [i], base: [...row], offsetSum: 0 };
      candidates.push(g);
      byKey.set(p.group[i]!, candidates);
      groups.push(g);
    }
  }
  return groups;
}

/** Exact optimum by the head-count programme; null when its state space is past the limits. */
export function structuredOptimum(p: OptimumProblem): OptimumResult | null {
  const n = p.rtt.length;
  const R = p.regions.length;
  const groups = interchangeableGroups(p).sort((a, b) => b.members.length - a.members.length);
  const radix = n + 1;
  const states = radix ** (R - 1);
  if (states > STRUCTURED_STATE_LIMIT) return null;
  let work = 0;
  let seen = 0;
  for (const g of groups) {
    work += binomial(seen + R - 1, R - 1) * binomial(g.members.length + R - 1, R - 1);
    seen += g.members.length;
  }
  if (work > STRUCTURED_WORK_LIMIT) return null;

  const index = (c: readonly number[]) => {
    let idx = 0;
    for (let a = R - 2; a >= 0; a--) idx = idx * radix + c[a]!;
    return idx;
  };
  let cost = new Float64Array(states).fill(Number.POSITIVE_INFINITY);
  cost[0] = 0;
  const parents: Int32Array[] = [];
  const distributions: number[][][] = [];
  const distIndex: number[][] = [];
  let total = 0;
  let offsets = 0;
  for (const g of groups) {
    const m = g.members.length;
    const dists = compositions(m, R);
    const dCost = dists.map((x) => x.reduce((s, xa, a) => s + xa * g.base[a]!, 0));
    const dIdx = dists.map(index);
    const next = new Float64Array(states).fill(Number.POSITIVE_INFINITY);
    const parent = new Int32Array(states).fill(-1);
    // Reachable states: the count vectors of the people placed so far (sum = total); the last
    // region's count is implied by the sum, so the index covers the other R − 1.
    for (const c of compositions(total, R)) {
      const from = index(c);
      const v = cost[from]!;
      if (v === Number.POSITIVE_INFINITY) continue;
      for (let d = 0; d < dists.length; d++) {
        const to = from + dIdx[d]!;
        const w = v + dCost[d]!;
        if (w < next[to]!) {
          next[to] = w;
          parent[to] = d;
        }
      }
    }
    cost = next;
    parents.push(parent);
    distributions.push(dists);
    distIndex.push(dIdx);
    total += m;
    offsets += g.offsetSum;
  }

  let best = Number.POSITIVE_INFINITY;
  let bestCounts: number[] = [];
  for (const c of compositions(n, R)) {
    const linear = cost[index(c)]!;
    if (linear === Number.POSITIVE_INFINITY) continue;
    let quadratic = 0;
    for (let a = 0; a < R; a++) for (let b = 0; b < R; b++) if (a !== b) quadratic += c[a]! * c[b]! * p.inter[a]![b]!;
    const sum = (n - 1) * (linear + offsets) + quadratic / 2;
    if (sum < best) {
      best = sum;
      bestCounts = c;
    }
  }
  // Walk the parents back to who goes where.
  const assignment = new Array<number>(n).fill(0);
  let at = index(bestCounts);
  for (let k = groups.length - 1; k >= 0; k--) {
    const d = parents[k]![at]!;
    const x = distributions[k]![d]!;
    const members = groups[k]!.members;
    let next = 0;
    for (let a = 0; a < R; a++) for (let t = 0; t < x[a]!; t++) assignment[members[next++]!] = a;
    at -= distIndex[k]![d]!;
  }
  const meanMs = best / (n * (n - 1));
  return { method: 'structured', meanMs, assignment, lowerBoundMs: meanMs };
}

/** Each pair at its own best pair of regions: no assignment can do better. */
export function pairwiseLowerBoundMs(p: OptimumProblem): number {
  const n = p.rtt.length;
  const R = p.regions.length;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      let best = Number.POSITIVE_INFINITY;
      for (let a = 0; a < R; a++) for (let b = 0; b < R; b++) best = Math.min(best, pairDelayMs(p, i, a, j, b));
      sum += best;
    }
  }
  return sum / ((n * (n - 1)) / 2);
}

/** Single moves until none helps, from the nearest-region start, each all-on-one-region start and `restarts` random starts. */
export function descentOptimum(p: OptimumProblem, restarts = 64, seed = 1): OptimumResult {
  const n = p.rtt.length;
  const R = p.regions.length;
  let state = seed >>> 0;
  const random = () => ((state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 4_294_967_296);
  const starts: number[][] = [p.rtt.map((row) => row.indexOf(Math.min(...row)))];
  for (let a = 0; a < R; a++) starts.push(new Array<number>(n).fill(a));
  for (let s = 0; s < restarts; s++) starts.push(Array.from({ length: n }, () => Math.floor(random() * R)));
  let best: number[] = starts[0]!;
  let bestMean = Number.POSITIVE_INFINITY;
  for (const start of starts) {
    const a = start.slice();
    const counts = new Array<number>(R).fill(0);
    for (const x of a) counts[x]!++;
    for (let improved = true; improved; ) {
      improved = false;
      for (let i = 0; i < n; i++) {
        counts[a[i]!]!--;
        // i's share of the objective on region b: (n − 1) rtt_i(b) + Σ_others R(b, their region).
        const share = (b: number) => (n - 1) * p.rtt[i]![b]! + counts.reduce((s, c, o) => s + c * p.inter[b]![o]!, 0);
        let to = a[i]!;
        let toShare = share(to);
        for (let b = 0; b < R; b++) {
          const s = share(b);
          if (s < toShare - 1e-9) {
            to = b;
            toShare = s;
          }
        }
        if (to !== a[i]) improved = true;
        a[i] = to;
        counts[to]!++;
      }
    }
    const mean = meanPairwiseMs(p, a);
    if (mean < bestMean) {
      bestMean = mean;
      best = a;
    }
  }
  return { method: 'bounded', meanMs: bestMean, assignment: best, lowerBoundMs: pairwiseLowerBoundMs(p) };
}

/** The best exact method the room's size allows, else descent with a lower bound. */
export function optimum(p: OptimumProblem): OptimumResult {
  if (p.regions.length ** p.rtt.length <= EXHAUSTIVE_LIMIT) return exhaustiveOptimum(p);
  return structuredOptimum(p) ?? descentOptimum(p);
}
