/**
 * What the CLI prints for people: aligned tables and label/value blocks. Text that came from
 * the API (titles, notes, reasons) is shown with control characters replaced, so nothing a
 * caller typed into an incident can move the cursor or recolour a responder's terminal.
 */
export type Cell = string | number | boolean | null | undefined;

export interface Column<T> {
  header: string;
  value: (row: T) => Cell;
  /** longer values are cut with an ellipsis (titles, messages) */
  max?: number;
  /** pad to at least this width, so that tables printed in batches line up (a followed timeline) */
  width?: number;
}

/** Control characters (C0, DEL, C1) as a visible replacement; newlines and tabs become spaces. */
export function clean(text: string): string {
  const control = (code: number) => code < 0x20 || (code >= 0x7f && code < 0xa0);
  return Array.from(text.replace(/[\t\n\r]+/g, ' '), (ch) => (control(ch.codePointAt(0)!) ? '\ufffd' : ch)).join('');
}

function cell(value: Cell, max?: number): string {
  if (value === null || value === undefined || value === '') return '-';
  const text = clean(String(value));
  return max && text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** Columns padded to their widest cell, two spaces apart; the last column is not padded. */
export function table<T>(rows: readonly T[], columns: Column<T>[]): string {
  const lines = [columns.map((c) => c.header), ...rows.map((row) => columns.map((c) => cell(c.value(row), c.max)))];
  const widths = columns.map((c, i) => Math.max(c.width ?? 0, ...lines.map((line) => line[i]!.length)));
  return lines
    .map((line) =>
      line
        .map((text, i) => (i === line.length - 1 ? text : text.padEnd(widths[i]!)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** `label:  value` lines, labels aligned; rows whose value is missing are left out. */
export function fields(rows: Array<[label: string, value: Cell]>): string {
  const shown = rows.filter(([, value]) => value !== undefined && value !== null && value !== '');
  const width = Math.max(0, ...shown.map(([label]) => label.length + 1));
  return shown.map(([label, value]) => `${`${label}:`.padEnd(width)}  ${cell(value)}`).join('\n');
}

/** A timestamp for people (`2025-01-15 10:04:05 UTC`), or nothing; what does not parse stays as it is. */
export function when(iso: string | null | undefined): string | undefined {
  if (!iso) return undefined;
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return `${d.toISOString().slice(0, 10)} ${d.toISOString().slice(11, 19)} UTC`;
}

/** A section heading followed by its body, or a line saying there is nothing. */
export function section(title: string, body: string | undefined, empty = 'none'): string {
  return `\n${title}\n${body ?? `  (${empty})`}`;
}
