/**
 * At most `limit` sends in flight to one recipient domain: receivers throttle (421 "too many
 * connections") a sender that opens many sessions at once, and a campaign to a list full of one
 * provider must not take every connection from the mail to everyone else.
 */
export class DomainLimiter {
  readonly #limit: number;
  readonly #active = new Map<string, number>();
  readonly #waiting = new Map<string, (() => void)[]>();

  constructor(limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError('the per-domain limit must be a positive integer');
    this.#limit = limit;
  }

  /** Runs `fn` once a slot for `domain` is free. */
  async run<T>(domain: string, fn: () => Promise<T>): Promise<T> {
    const key = domain.toLowerCase();
    if ((this.#active.get(key) ?? 0) >= this.#limit) {
      await new Promise<void>((resolve) => {
        const queue = this.#waiting.get(key) ?? [];
        queue.push(resolve);
        this.#waiting.set(key, queue);
      });
    } else this.#active.set(key, (this.#active.get(key) ?? 0) + 1);
    try {
      return await fn();
    } finally {
      // A waiter inherits the slot directly, so no newcomer can overtake it.
      const next = this.#waiting.get(key)?.shift();
      if (next) next();
      else {
        const n = (this.#active.get(key) ?? 1) - 1;
        if (n === 0) this.#active.delete(key);
        else this.#active.set(key, n);
      }
      if (this.#waiting.get(key)?.length === 0) this.#waiting.delete(key);
    }
  }

  inFlight(domain: string): number {
    return this.#active.get(domain.toLowerCase()) ?? 0;
  }
}

export const domainOf = (email: string) => email.slice(email.lastIndexOf('@') + 1).toLowerCase();
