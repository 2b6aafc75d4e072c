/**
 * The terms a record is found by through its headers: the `records.header_terms`
 * column and its one GIN index, which serve both `hasHeader=<name>` and
 * `header.<name>=<value>`.
 *
 * A record's terms are each distinct lower-cased header name and each header as
 * "<lower-cased name>=<value>". A term without "=" is a name; a term with "=" splits
 * at its first "=" into name and value. That reading is unambiguous only while no
 * name contains "=": HTTP field names are tokens and "=" is not a tchar (the agent
 * parses tokens only), but the ingester stores whatever name a batch carries. A
 * header whose name contains "=" therefore gets no terms: a filter cannot ask for
 * it (filters take token names), and its terms could answer filters for another
 * name ("a=b: c" would match `hasHeader=a=b`'s term and `header.a=b=c`).
 */

/** Whether a header name has terms (see above); a filter on any other name matches nothing. */
export function isIndexedHeaderName(name: string): boolean {
  return !name.includes("=");
}

/** The term of a header name (`hasHeader`). */
export function headerNameTerm(name: string): string {
  return name.toLowerCase();
}

/** The term of a header with this value (`header.<name>=<value>`). */
export function headerValueTerm(name: string, value: string): string {
  return `${name.toLowerCase()}=${value}`;
}

/** A record's terms, in the order `storeRecordBatch` writes them: a name where it first occurs, then each header's pair. */
export function headerTerms(headers: ReadonlyArray<{ name: string; value: string }>): string[] {
  const names = new Set<string>();
  const terms: string[] = [];
  for (const h of headers) {
    if (!isIndexedHeaderName(h.name)) continue;
    const name = headerNameTerm(h.name);
    if (!names.has(name)) {
      names.add(name);
      terms.push(name);
    }
    terms.push(`${name}=${h.value}`);
  }
  return terms;
}
