/**
 * Text Postgres can store as sent. Plain TypeScript (no zod-openapi), so the record and
 * NATS schemas the agent bundles can use it.
 */

/**
 * NUL, which Postgres text and jsonb cannot hold (the insert fails), and unpaired UTF-16
 * surrogates, which the driver would silently store as U+FFFD.
 */
const UNSTORABLE_TEXT = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
export const UNSTORABLE_TEXT_MESSAGE = "must not contain NUL characters or unpaired UTF-16 surrogates";

export function isStorableText(text: string): boolean {
  return !UNSTORABLE_TEXT.test(text);
}
