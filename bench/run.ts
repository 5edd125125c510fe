// `npm run bench [-- name ...]`: runs the named benchmarks (all when none is named). Not part of `npm test`.
import { gridBench } from './grid.ts';
import { triggeredBench } from './triggered.ts';
import { reportsBench } from './reports.ts';
import { campaignBench } from './campaign.ts';
import { resolutionBench } from './resolution.ts';

const BENCHES: Record<string, () => Promise<void>> = {
  grid: gridBench,
  triggered: triggeredBench,
  reports: reportsBench,
  campaign: campaignBench,
  resolution: resolutionBench,
};

const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const names = wanted.length ? wanted : Object.keys(BENCHES);
for (const name of names) {
  const run = BENCHES[name];
  if (!run) {
    console.error(`unknown benchmark "${name}"; known: ${Object.keys(BENCHES).join(', ')}`);
    process.exit(2);
  }
  await run();
}
