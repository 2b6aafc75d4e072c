/**
 * Per-key token buckets (in memory, per replica: N replicas allow up to N× the
 * limit in aggregate; put a shared limiter in front if that matters).
 */
export interface RateLimit {
  perSecond: number;
  burst: number;
}

export type RateDecision = { allowed: true; remaining: number } | { allowed: false; retryAfterSeconds: number };

export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  constructor(
    readonly defaults: RateLimit,
    private readonly maxKeys = 100_000,
  ) {}

  take(keyId: string, limit: RateLimit = this.defaults, now = Date.now()): RateDecision {
    let b = this.buckets.get(keyId);
    if (!b) {
      if (this.buckets.size >= this.maxKeys) this.buckets.delete(this.buckets.keys().next().value!);
      b = { tokens: limit.burst, at: now };
      this.buckets.set(keyId, b);
    }
    b.tokens = Math.min(limit.burst, b.tokens + ((now - b.at) / 1000) * limit.perSecond);
    b.at = now;
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return { allowed: true, remaining: Math.floor(b.tokens) };
    }
    return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - b.tokens) / limit.perSecond)) };
  }
}
