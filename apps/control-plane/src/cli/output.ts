/** Plain aligned tables for humans (the CLI's default output). */
export function printTable<T extends object>(rows: T[], columns: (keyof T & string)[]): void {
  const cell = (v: unknown) => (v === null || v === undefined ? "-" : Array.isArray(v) ? v.join(",") : String(v));
  const data = rows.map((r) => columns.map((c) => cell(r[c])));
  const widths = columns.map((c, i) => Math.max(c.length, ...data.map((d) => d[i]!.length)));
  const line = (cells: string[]) => cells.map((s, i) => s.padEnd(widths[i]!)).join("  ").trimEnd();
  console.log(line(columns.map((c) => c.toUpperCase())));
  for (const d of data) console.log(line(d));
  if (rows.length === 0) console.log("(none)");
}
