/**
 * An integer query parameter: a JSON number (tRPC) or a string of decimal digits (a URL's
 * query). Unlike `z.coerce.number()`, `true`, `""`, `null`, `"0x10"` or `"1e3"` are refused
 * rather than turned into 1, 0, 16 or 1000. Documented in OpenAPI as the integer it is.
 */
import { z } from "zod";

const DECIMAL = /^-?\d{1,12}$/;

export const queryIntSchema = (min: number, max: number) =>
  z.preprocess((v) => (typeof v === "string" && DECIMAL.test(v) ? Number(v) : v), z.int().min(min).max(max));
