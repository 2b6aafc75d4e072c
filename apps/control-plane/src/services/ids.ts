/** Prefixed random identifiers ("ten_…", "key_…") and API key secrets ("hc_…"). */
import { createHash, randomBytes } from "node:crypto";

const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/** Uniform base62 string of `length` characters (rejection sampling, no modulo bias). */
export function randomBase62(length: number): string {
  let out = "";
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      if (byte < 248) out += ALPHABET[byte % 62];
      if (out.length === length) break;
    }
  }
  return out;
}

export function newId(prefix: string): string {
  return `${prefix}_${randomBase62(20)}`;
}

export const API_KEY_PREFIX = "hc_";
export const ENROLLMENT_TOKEN_PREFIX = "hcet_";

/** A fresh enrollment token: hcet_ + 32 base62 characters. */
export function newEnrollmentTokenSecret(): { token: string; prefix: string; hash: string } {
  const token = ENROLLMENT_TOKEN_PREFIX + randomBase62(32);
  return { token, prefix: token.slice(0, ENROLLMENT_TOKEN_PREFIX.length + 6), hash: hashApiKey(token) };
}

export function looksLikeEnrollmentToken(token: string): boolean {
  return /^hcet_[0-9A-Za-z]{32}$/.test(token);
}
const VISIBLE_PREFIX_LENGTH = API_KEY_PREFIX.length + 8;

/** A fresh API key: 32 base62 characters ≈ 190 bits of entropy. */
export function newApiKeySecret(): { key: string; prefix: string; hash: string } {
  const key = API_KEY_PREFIX + randomBase62(32);
  return { key, prefix: key.slice(0, VISIBLE_PREFIX_LENGTH), hash: hashApiKey(key) };
}

export function hashApiKey(key: string): string {
  return createHash("sha256").update(key).digest("hex");
}

export function looksLikeApiKey(key: string): boolean {
  return /^hc_[0-9A-Za-z]{32}$/.test(key);
}
