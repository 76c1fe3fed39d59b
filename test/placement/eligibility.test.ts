import { describe, expect, it } from 'vitest';
import { chooseNode, nodeExclusion, regionExclusion } from '../../router/placement/eligibility.ts';
import { node } from './fixtures.ts';

const NONE = new Set<string>();

describe('nodeExclusion', () => {
  it.each([
    ['alive', {}, null],
    ['suspect', { state: 'suspect' as const }, null],
    ['dead', { state: 'dead' as const }, 'NODE_DEAD'],
    ['cordoned', { cordoned: true }, 'CORDONED'],
    ['draining', { draining: true }, 'DRAINING'],
    ['stress 1', { stress: 1 }, 'OVERLOADED'],
    ['stress NaN', { stress: Number.NaN }, 'OVERLOADED'],
    ['dead and cordoned', { state: 'dead' as const, cordoned: true }, 'NODE_DEAD'],
    ['cordoned and draining', { cordoned: true, draining: true }, 'CORDONED'],
    ['draining and overloaded', { draining: true, stress: 2 }, 'DRAINING'],
  ])('%s → %s', (_name, overrides, expected) => {
    expect(nodeExclusion(node('n1', 'r', overrides), NONE)).toBe(expected);
  });

  it('excludes the nodes the client failed on, after every other cause', () => {
    expect(nodeExclusion(node('n1', 'r'), new Set(['n1']))).toBe('EXCLUDED_BY_CLIENT');
    expect(nodeExclusion(node('n1', 'r', { stress: 1 }), new Set(['n1']))).toBe('OVERLOADED');
  });
});

describe('regionExclusion', () => {
  it('is NO_NODES for an empty region and null when any node is eligible', () => {
    expect(regionExclusion([], NONE)).toBe('NO_NODES');
    expect(regionExclusion([node('a', 'r', { state: 'dead' }), node('b', 'r')], NONE)).toBeNull();
  });

  it('reports the least lasting cause among the nodes', () => {
    expect(regionExclusion([node('a', 'r', { state: 'dead' }), node('b', 'r', { stress: 1 })], NONE)).toBe('OVERLOADED');
    expect(regionExclusion([node('a', 'r', { state: 'dead' }), node('b', 'r')], new Set(['b']))).toBe('EXCLUDED_BY_CLIENT');
    expect(regionExclusion([node('a', 'r', { draining: true }), node('b', 'r', { cordoned: true })], NONE)).toBe('DRAINING');
    expect(regionExclusion([node('a', 'r', { state: 'dead' }), node('b', 'r', { state: 'dead' })], NONE)).toBe('NODE_DEAD');
  });
});

describe('chooseNode', () => {
  it('keeps the room on a node already serving it, even a more stressed one', () => {
    const choice = chooseNode([node('a', 'r', { stress: 0.1 }), node('b', 'r', { stress: 0.9 })], new Set(['b']), NONE);
    expect(choice).toMatchObject({ node: { nodeId: 'b' }, reason: 'NODE_ALREADY_IN_ROOM', eligibleCount: 2 });
  });

  it('leaves a room node that is no longer eligible', () => {
    const choice = chooseNode([node('a', 'r', { stress: 0.4 }), node('b', 'r', { draining: true })], new Set(['b']), NONE);
    expect(choice).toMatchObject({ node: { nodeId: 'a' }, reason: 'NODE_LEAST_STRESSED', eligibleCount: 1 });
  });

  it('prefers alive over suspect, then lower stress, then node id', () => {
    const nodes = [node('d', 'r', { state: 'suspect', stress: 0 }), node('c', 'r', { stress: 0.3 }), node('b', 'r', { stress: 0.2 }), node('a', 'r', { stress: 0.2 })];
    expect(chooseNode(nodes, NONE, NONE)?.node.nodeId).toBe('a');
    expect(chooseNode(nodes.slice(0, 2), NONE, NONE)?.node.nodeId).toBe('c');
  });

  it('is null when nothing is eligible', () => {
    expect(chooseNode([node('a', 'r', { state: 'dead' })], NONE, NONE)).toBeNull();
  });
});
