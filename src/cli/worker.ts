import type { Command } from 'commander';
import { ConfigError, loadConfig, redactUrl, type Config } from '../platform/config.ts';
import { openDatabase } from '../platform/database.ts';
import { migrate } from '../platform/migrate.ts';
import { withSigningSecret } from '../platform/instance-secret.ts';
import { createContext } from '../platform/context.ts';
import type { Envoi } from '../app.ts';
import { Worker, type WorkerLog } from '../sending/worker.ts';
import { CampaignScheduler } from '../campaigns/scheduler.ts';
import { WebhookDispatcher } from '../webhooks/dispatcher.ts';
import { ProgramRunner } from '../programs/runner.ts';

const jsonLog: WorkerLog = (level, msg, fields) => {
  const line = `${JSON.stringify({ level, time: new Date().toISOString(), msg, ...fields })}\n`;
  (level === 'info' ? process.stdout : process.stderr).write(line);
};

function mailTarget(config: Config): string {
  return config.smtpUrl ? `SMTP relay ${redactUrl(config.smtpUrl)}` : 'the development outbox (no SMTP_URL): GET /v1/outbox';
}

/**
 * Runs a worker inside the server process and stops it before the server closes the database:
 * what `envoi start` does, and the only way on PGlite, whose database one process holds.
 */
export function startWorkerInServer(envoi: Envoi): Worker {
  const worker = new Worker(envoi.ctx, { log: jsonLog }).start();
  const scheduler = new CampaignScheduler(envoi.ctx, { log: jsonLog }).start();
  const programs = new ProgramRunner(envoi.ctx, { log: jsonLog }).start();
  const webhooks = new WebhookDispatcher(envoi.ctx, { log: jsonLog }).start();
  const close = envoi.close.bind(envoi);
  envoi.close = async () => {
    await webhooks.stop();
    await programs.stop();
    await scheduler.stop();
    await worker.stop();
    await close();
  };
  process.stdout.write(`  mail           worker ${worker.id} sending through ${mailTarget(envoi.config)}\n\n`);
  return worker;
}

export function registerWorker(program: Command) {
  program
    .command('worker')
    .description('claim and send due deliveries (needs DATABASE_URL; on the embedded database `envoi start` runs the worker itself)')
    .option('--concurrency <n>', 'sends in flight (default ENVOI_WORKER_CONCURRENCY)', (v) => Number(v))
    .action(async (o: { concurrency?: number }) => {
      let config: Config;
      try {
        config = loadConfig();
      } catch (e) {
        if (e instanceof ConfigError) {
          process.stderr.write(`${e.message}\n`);
          process.exit(2);
        }
        throw e;
      }
      if (!config.databaseUrl) {
        process.stderr.write(
          'envoi worker needs DATABASE_URL (a PostgreSQL server): the embedded database belongs to one process, and `envoi start` already runs a worker inside it.\n',
        );
        process.exit(2);
      }
      if (o.concurrency !== undefined && (!Number.isInteger(o.concurrency) || o.concurrency < 1 || o.concurrency > 200)) {
        process.stderr.write('--concurrency must be an integer between 1 and 200\n');
        process.exit(2);
      }
      const database = await openDatabase(config, { poolSize: 5 });
      await migrate(database);
      const ctx = createContext(await withSigningSecret(database.db, config), database);
      const worker = new Worker(ctx, { log: jsonLog, concurrency: o.concurrency }).start();
      const scheduler = new CampaignScheduler(ctx, { log: jsonLog }).start();
      const programs = new ProgramRunner(ctx, { log: jsonLog }).start();
      const webhooks = new WebhookDispatcher(ctx, { log: jsonLog }).start();
      process.stdout.write(`envoi worker ${worker.id} on PostgreSQL ${redactUrl(config.databaseUrl)}, sending through ${mailTarget(config)}\n`);
      let stopping = false;
      const stop = async () => {
        if (stopping) return;
        stopping = true;
        await webhooks.stop();
        await programs.stop();
        await scheduler.stop();
        await worker.stop();
        await database.close();
        process.exit(0);
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
}
