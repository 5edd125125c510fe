import { randomFillSync } from 'node:crypto';

/**
 * Ids for the rows written by the hundred thousand (the contacts an import creates, the deliveries
 * of a campaign or of the triggered API), as RFC 9562 version 7 UUIDs that only ever increase
 * (48-bit millisecond time, then a 42-bit counter started at a random value each millisecond, then
 * 32 random bits). The table's default, gen_random_uuid(), scatters a million inserts over the whole
 * primary key and over every index that ends in the id (created_at, marketing state, last name): on
 * the 2-core machine, increasing ids took a 1,000,000-row insert from 24.9 s to 13.2 s. 74 bits stay
 * unpredictable (counter start and tail); ids were never secrets here (links carry signed tokens).
 * Written here rather than taken from the `uuid` package, whose v7 is monotonic too, because of cost:
 * measured 2,044 ms per million ids with uuid 14's v7 against 281-295 ms here, on an import that makes
 * two ids per row (the contact and its record) and writes a million rows in about 24 s.
 */
export function monotonicUuidV7(now: () => number = Date.now, fill: (b: Buffer) => void = randomFillSync): () => string {
  let lastMs = -1;
  let msHex = '';
  let counter = 0;
  const pool = Buffer.alloc(4096);
  let at = pool.length;
  const refill = (bytes: number) => {
    if (at + bytes > pool.length) {
      fill(pool);
      at = 0;
    }
  };
  // Below 2^41 at the start of each millisecond: at least 2^41 more ids fit before the counter runs out.
  const restart = () => {
    refill(6);
    const v = pool.readUIntBE(at, 6) % 2 ** 41;
    at += 6;
    return v;
  };
  const newMs = (ms: number) => {
    lastMs = ms;
    const h = ms.toString(16).padStart(12, '0');
    msHex = `${h.slice(0, 8)}-${h.slice(8)}-`;
    counter = restart();
  };

  // Strings built from hex pieces: a million of them through Buffer.toString('hex') cost a second.
  return () => {
    const ms = now();
    if (ms > lastMs) newMs(ms);
    else if (++counter >= 2 ** 42) newMs(lastMs + 1); // out of counter in this millisecond (or the clock went back)
    const high = Math.floor(counter / 2 ** 30); // 12 bits, after the version nibble
    const low = (0x80000000 + (counter % 2 ** 30)).toString(16); // the variant bits, then 30 bits
    refill(4);
    const tail = HEX[pool[at]!]! + HEX[pool[at + 1]!]! + HEX[pool[at + 2]!]! + HEX[pool[at + 3]!]!;
    at += 4;
    return `${msHex}${(0x7000 + high).toString(16)}-${low.slice(0, 4)}-${low.slice(4)}${tail}`;
  };
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/**
 * This process's generator for deliveries and messages: their primary keys, and every non-HOT update
 * of a delivery (claimed, then finished), add index entries at the id's place, which a random id puts
 * on a random page of an index as large as the table.
 */
export const nextRowId = monotonicUuidV7();
