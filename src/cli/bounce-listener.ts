import type { Envoi } from '../app.ts';
import { startBounceListener, type BounceListener, type ListenerLog } from '../sending/bounce-listener.ts';

/**
 * Starts the return path's SMTP listener inside the server when ENVOI_BOUNCE_SMTP_PORT is set, and
 * closes it before the server closes the database (what `envoi serve` and `envoi start` do).
 */
export async function startBounceListenerInServer(envoi: Envoi): Promise<BounceListener | null> {
  const { bounceSmtpPort: port, bounceSmtpHost: host, bounceDomain } = envoi.config;
  if (port === null) return null;
  const log: ListenerLog = (level, msg, fields) => envoi.http.log[level](fields ?? {}, msg);
  const listener = await startBounceListener(envoi.ctx, { port, host, log });
  const close = envoi.close.bind(envoi);
  envoi.close = async () => {
    await listener.close();
    await close();
  };
  process.stdout.write(`  bounces        SMTP ${host}:${listener.port} for bounce+<delivery>.<mark>@${bounceDomain} (point the domain's MX here)\n\n`);
  return listener;
}
