import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { openPGlite } from './database.ts';

const root = mkdtempSync(join(tmpdir(), 'envoi-database-test-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('openPGlite on a folder', () => {
  it('sets up a new folder, keeps what was written, and opens it again without setting it up', async () => {
    const dir = join(root, 'nested', 'data');
    const first = await openPGlite(dir);
    expect(existsSync(join(dir, 'PG_VERSION'))).toBe(true);
    await first.exec(`CREATE TABLE kept (id int PRIMARY KEY, note text); INSERT INTO kept VALUES (1, 'écrit avant');`);
    expect((await sql<{ shared_buffers: string }>`SHOW shared_buffers`.execute(first.db)).rows[0]!.shared_buffers).toBe('32MB');
    await first.close();

    const again = await openPGlite(dir);
    expect((await sql<{ note: string }>`SELECT note FROM kept WHERE id = 1`.execute(again.db)).rows).toEqual([{ note: 'écrit avant' }]);
    await again.close();
    // initdb in a child process, then two starts of PGlite: seconds on a busy machine, not the default 5.
  }, 60_000);

  it('fails with the folder and the reason when the folder cannot be made', async () => {
    const file = join(root, 'a-file');
    writeFileSync(file, 'not a folder');
    await expect(openPGlite(join(file, 'data'))).rejects.toThrow(/PGlite data folder .*a-file\/data: .*ENOTDIR/);
  });
});
