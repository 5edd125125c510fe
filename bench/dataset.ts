import { createWriteStream } from 'node:fs';
import { once } from 'node:events';

const FIRST = ['Ada', 'Grace', 'Alan', 'Linus', 'Margaret', 'Tim', 'Barbara', 'Ken', 'Frances', 'Dennis', 'Hedy', 'John', 'Radia', 'Edsger', 'Karen', 'Donald'];
const LAST = ['Lovelace', 'Hopper', 'Turing', 'Torvalds', 'Hamilton', 'Berners-Lee', 'Liskov', 'Thompson', 'Allen', 'Ritchie', 'Lamarr', 'McCarthy', 'Perlman', 'Dijkstra', 'Jones', 'Knuth'];
const COMPANY = ['Initech', 'Globex', 'Umbrella', 'Hooli', 'Vandelay', 'Acme', 'Stark', 'Wayne', 'Tyrell', 'Cyberdyne'];
const JOB = ['Engineer', 'Manager', 'Director', 'Designer', 'Analyst', 'Consultant', 'Sales engineer', 'CTO'];
export const DIETS = ['none', 'vegetarian', 'vegan', 'halal', 'kosher'];

/** Deterministic pseudo-random contact number i (no Math.random: the same file every run). */
export function contactRow(i: number): string[] {
  const h = (i * 2654435761) >>> 0;
  const day = 1 + (h % 28);
  const month = 1 + ((h >>> 5) % 12);
  return [
    `person${i}@example${i % 97}.com`,
    FIRST[h % FIRST.length]!,
    LAST[(h >>> 3) % LAST.length]!,
    COMPANY[(h >>> 7) % COMPANY.length]!,
    JOB[(h >>> 11) % JOB.length]!,
    DIETS[(h >>> 13) % DIETS.length]!,
    String((h >>> 17) % 1000),
    `19${50 + ((h >>> 19) % 50)}-${String(month).padStart(2, '0')}-${String(day).padStart(2, '0')}`,
  ];
}

export const CSV_HEADER = ['email', 'first_name', 'last_name', 'company', 'job_title', 'diet', 'score', 'birthday'];

/** Writes an N-row contacts CSV (plain values: no quoting needed) and returns its size in bytes. */
export async function writeContactsCsv(path: string, n: number): Promise<number> {
  const out = createWriteStream(path);
  let bytes = 0;
  const write = async (s: string) => {
    bytes += Buffer.byteLength(s);
    if (!out.write(s)) await once(out, 'drain');
  };
  await write(CSV_HEADER.join(',') + '\n');
  let chunk = '';
  for (let i = 0; i < n; i++) {
    chunk += contactRow(i).join(',') + '\n';
    if (chunk.length > 1 << 16) {
      await write(chunk);
      chunk = '';
    }
  }
  await write(chunk);
  out.end();
  await once(out, 'finish');
  return bytes;
}
