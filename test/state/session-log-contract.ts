import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import type { SessionLogOptions } from '../../router/state/buffered-session-log.ts';
import type { SessionLog, SessionRow } from '../../router/state/types.ts';
import { BadRequestError } from '../../shared/errors.ts';

/** A new, not yet started log over the backend's shared storage. */
export type SessionLogFactory = (options: SessionLogOptions) => SessionLog;

export const QUIET_FLUSHER: SessionLogOptions = { batchSize: 50, flushMs: 60_000, bufferMax: 10_000 };

export function sessionRow(overrides: Partial<SessionRow> = {}): SessionRow {
  return {
    id: randomUUID(),
    roomId: 'room-1',
    userId: 'user-1',
    serverId: 'us-east-1',
    region: 'us-east',
    homeRegion: 'us-east',
    status: 'allocated',
    createdAt: new Date('2024-05-01T10:00:00.000Z'),
    endedAt: null,
    ...overrides,
  };
}

/** The SessionLog contract; every implementation must pass it unchanged. */
export function describeSessionLogContract(name: string, createLog: SessionLogFactory): void {
  describe(`SessionLog contract: ${name}`, () => {
    const opened: SessionLog[] = [];
    async function start(options: SessionLogOptions = QUIET_FLUSHER): Promise<SessionLog> {
      const log = createLog(options);
      opened.push(log);
      await log.start();
      return log;
    }
    afterEach(async () => {
      await Promise.all(opened.splice(0).map((log) => log.close()));
    });

    it('queues rows and writes them on flush', async () => {
      const log = await start();
      const rows = [sessionRow(), sessionRow({ userId: 'user-2' })];
      for (const row of rows) log.record(row);
      expect(log.bufferDepth()).toBe(2);
      expect(await log.get(rows[0]!.id)).toBeNull();
      await log.flush();
      expect(log.bufferDepth()).toBe(0);
      expect(await log.get(rows[0]!.id)).toEqual(rows[0]);
      expect(await log.get(rows[1]!.id)).toEqual(rows[1]);
      expect(await log.get(randomUUID())).toBeNull();
      expect(await log.get('not-a-uuid')).toBeNull();
    });

    it('the background flusher writes without being asked', async () => {
      const log = await start({ batchSize: 10, flushMs: 20, bufferMax: 1_000 });
      const row = sessionRow();
      log.record(row);
      for (const deadline = Date.now() + 5_000; log.bufferDepth() > 0 && Date.now() < deadline; ) await sleep(10);
      expect(await log.get(row.id)).toEqual(row);
    });

    it('is idempotent on the row id: a replayed record changes nothing', async () => {
      const log = await start();
      const row = sessionRow();
      log.record(row);
      log.record({ ...row, userId: 'someone-else' });
      expect(log.bufferDepth()).toBe(1);
      await log.flush();
      log.record({ ...row, status: 'ended', serverId: 'eu-west-1' });
      await log.flush();
      expect(await log.get(row.id)).toEqual(row);
    });

    it('applies a status change queued with its row (the insert goes first)', async () => {
      const log = await start();
      const row = sessionRow();
      const endedAt = new Date('2024-05-01T10:30:00.000Z');
      log.record(row);
      log.setStatus(row.id, 'active', new Date('2024-05-01T10:00:05.000Z'));
      log.setStatus(row.id, 'ended', endedAt);
      expect(log.bufferDepth()).toBe(2);
      await log.flush();
      expect(await log.get(row.id)).toEqual({ ...row, status: 'ended', endedAt });
    });

    it('never moves a status backwards, in one flush or across flushes', async () => {
      const log = await start();
      const row = sessionRow();
      const endedAt = new Date('2024-05-01T11:00:00.000Z');
      log.record(row);
      await log.flush();
      log.setStatus(row.id, 'active', new Date('2024-05-01T10:00:05.000Z'));
      await log.flush();
      expect((await log.get(row.id))?.status).toBe('active');
      log.setStatus(row.id, 'ended', endedAt);
      log.setStatus(row.id, 'active', new Date('2024-05-01T12:00:00.000Z'));
      await log.flush();
      log.setStatus(row.id, 'active', new Date('2024-05-01T12:00:00.000Z'));
      log.setStatus(row.id, 'expired', new Date('2024-05-01T12:00:00.000Z'));
      await log.flush();
      expect(await log.get(row.id)).toEqual({ ...row, status: 'ended', endedAt });
    });

    it('keeps a bounded buffer: the oldest entries are dropped and counted', async () => {
      const log = await start({ batchSize: 50, flushMs: 60_000, bufferMax: 100 });
      const rows = Array.from({ length: 150 }, (_, i) => sessionRow({ userId: `user-${i}` }));
      for (const row of rows) log.record(row);
      expect(log.bufferDepth()).toBe(100);
      expect(log.droppedCount()).toBe(50);
      await log.flush();
      expect(await log.get(rows[49]!.id)).toBeNull();
      expect(await log.get(rows[50]!.id)).toEqual(rows[50]);
      expect(await log.get(rows[149]!.id)).toEqual(rows[149]);
    });

    it('refuses rows the table could not hold when they are queued', async () => {
      const log = await start();
      expect(() => log.record(sessionRow({ id: 'not-a-uuid' }))).toThrow(BadRequestError);
      expect(() => log.record(sessionRow({ userId: 'u'.repeat(129) }))).toThrow(BadRequestError);
      expect(() => log.setStatus('not-a-uuid', 'ended', new Date())).toThrow(BadRequestError);
      expect(log.bufferDepth()).toBe(0);
    });
  });
}
