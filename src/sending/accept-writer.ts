/**
 * Group commit of accepted triggered messages: the requests that are ready at the same time are
 * written by one statement, so one commit (one WAL flush) makes all of them durable, and each request
 * is answered 202 only after that commit. While `maxInFlight` writes are running, newly ready requests
 * wait and go together in the next one: the busier the server, the larger the batches.
 *
 * Per request, whatever its neighbours do:
 *  - two requests of one batch with the same idempotency key: the first is written, the others are
 *    answered as repeats of it (the caller reads the winner back, as for any key already taken);
 *  - a row the database refuses (a value PostgreSQL cannot store, a contact deleted meanwhile) makes
 *    the batch statement fail; the batch is then written in halves until that row is alone, so that
 *    only that request gets the error.
 */
import type { Kysely } from 'kysely';
import type { DB } from '../platform/schema.ts';
import { AppError } from '../platform/errors.ts';
import { Batcher } from './accept-batch.ts';
import { preparing } from './accept-prepared.ts';
import * as store from './store.ts';

/** true: written; false: another message holds the idempotency key (look it up and answer as a repeat). */
export type WriteOutcome = boolean;

const FOREIGN_KEY_VIOLATION = '23503';

/** SQLSTATE classes a row can cause (22 data, 23 constraints) or the moment can (40 deadlock, serialisation). */
const rowFault = (e: unknown) => /^(22|23|40)/.test(String((e as { code?: unknown }).code ?? ''));

function rowError(e: unknown): Error {
  const code = (e as { code?: unknown }).code;
  if (code === FOREIGN_KEY_VIOLATION) {
    return new AppError(409, 'changed_meanwhile', 'the audience, event or community of this message was deleted while it was being accepted; nothing was sent');
  }
  return e instanceof Error ? e : new Error(String(e));
}

/**
 * Writes `rows` in one statement; when a row makes it fail, in halves, down to that row alone, so that
 * k bad rows among n cost about k log n statements and only they get an error. A failure no row
 * causes (the database is away) fails them all.
 */
async function writeRows(db: Kysely<DB>, rows: store.TriggeredRow[], retried = false): Promise<(WriteOutcome | Error)[]> {
  try {
    const written = await store.insertTriggered(db, rows);
    return rows.map((r) => written.has(r.id));
  } catch (e) {
    if (!rowFault(e)) throw e;
    if (rows.length > 1) {
      const half = Math.ceil(rows.length / 2);
      return [...(await writeRows(db, rows.slice(0, half))), ...(await writeRows(db, rows.slice(half)))];
    }
    // A deadlock or serialisation failure is the moment's, not the row's: once more.
    if (/^40/.test(String((e as { code?: unknown }).code)) && !retried) return writeRows(db, rows, true);
    return [rowError(e)];
  }
}

async function writeBatch(db: Kysely<DB>, rows: store.TriggeredRow[]): Promise<(WriteOutcome | Error)[]> {
  // The first of each idempotency key writes; its batch-mates wait for the commit and replay it.
  const firstOfKey = new Set<string>();
  const writers: number[] = [];
  rows.forEach((r, i) => {
    if (r.idempotency_key !== null) {
      const k = `${r.org_id}|${r.idempotency_key}`;
      if (firstOfKey.has(k)) return;
      firstOfKey.add(k);
    }
    writers.push(i);
  });
  const out: (WriteOutcome | Error)[] = rows.map(() => false);
  const results = await writeRows(
    db,
    writers.map((i) => rows[i]!),
  );
  writers.forEach((i, j) => (out[i] = results[j]!));
  return out;
}

const writers = new WeakMap<Kysely<DB>, Batcher<store.TriggeredRow, WriteOutcome>>();

/** The write batcher of one database handle; `prepared` (node-postgres only) for a named statement, decided by the first call. */
export function acceptWriterFor(db: Kysely<DB>, opts: { prepared?: boolean } = {}): Batcher<store.TriggeredRow, WriteOutcome> {
  let w = writers.get(db);
  if (!w) {
    const writeDb = preparing(db, 'envoi_accept_write', opts.prepared ?? false);
    writers.set(db, (w = new Batcher((rows) => writeBatch(writeDb, rows), { maxItems: 500, maxInFlight: 2 })));
  }
  return w;
}
