/** Plain-text and Markdown rendering of a comparison table. */

export interface Table {
  columns: string[];
  rows: string[][];
}

export function renderText(t: Table): string {
  const widths = t.columns.map((c, i) => Math.max(c.length, ...t.rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  return [line(t.columns), widths.map((w) => "-".repeat(w)).join("  "), ...t.rows.map(line)].join("\n");
}

export function renderMarkdown(t: Table): string {
  const esc = (s: string) => s.replace(/\|/g, "\\|");
  return [
    `| ${t.columns.map(esc).join(" | ")} |`,
    `|${t.columns.map((_, i) => (i === 0 ? "---" : "---:")).join("|")}|`,
    ...t.rows.map((r) => `| ${r.map(esc).join(" | ")} |`),
  ].join("\n");
}
