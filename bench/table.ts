/** The benchmark's tables: figures, what went wrong while measuring them, and the targets they meet or miss. */
import type { Load } from './load.js';

export interface Row {
  figure: string;
  value: string;
  /** Non-2xx answers (and failed batch items) and connection errors over the row's rounds; absent for figures measured without HTTP. */
  bad?: { failed: number; errors: number };
  ratio?: string;
  target?: string;
  /** Whether the target is met; absent for rows without one. */
  met?: boolean;
}

export type Verdict = '' | 'met' | 'MISSED' | 'INVALID';

/** A row is invalid when any request behind it failed, whatever its target: its figures count only successes, but a failure means the load was not what it claims. */
export function verdictOf(row: Row): Verdict {
  if (row.bad && row.bad.failed + row.bad.errors > 0) return 'INVALID';
  if (row.met === undefined) return '';
  return row.met ? 'met' : 'MISSED';
}

export function badOf(loads: Load[]): { failed: number; errors: number } {
  return { failed: sum(loads.map((load) => load.failed)), errors: sum(loads.map((load) => load.errors)) };
}

export function printTable(title: string, rows: Row[]): void {
  const header = ['figure', 'measured (median of rounds)', 'non-2xx / errors', 'ratio', 'target', ''];
  const cells = rows.map((row) => [row.figure, row.value, row.bad ? `${fmt(row.bad.failed)} / ${fmt(row.bad.errors)}` : '', row.ratio ?? '', row.target ?? '', verdictOf(row)]);
  const widths = header.map((_, i) => Math.max(header[i]!.length, ...cells.map((cell) => cell[i]!.length)));
  const line = (cell: string[]) => `| ${cell.map((text, i) => text.padEnd(widths[i]!)).join(' | ')} |`;
  console.log(`\n${title}\n`);
  console.log(line(header));
  console.log(`|${widths.map((width) => '-'.repeat(width + 2)).join('|')}|`);
  for (const cell of cells) console.log(line(cell));
}

/** A plain table with its own columns (the growth and cluster sections). */
export function printGrid(title: string, header: string[], cells: string[][]): void {
  const widths = header.map((_, i) => Math.max(header[i]!.length, ...cells.map((cell) => (cell[i] ?? '').length)));
  const line = (cell: string[]) => `| ${header.map((_, i) => (cell[i] ?? '').padEnd(widths[i]!)).join(' | ')} |`;
  console.log(`\n${title}\n`);
  console.log(line(header));
  console.log(`|${widths.map((width) => '-'.repeat(width + 2)).join('|')}|`);
  for (const cell of cells) console.log(line(cell));
}

/** The middle value; of an even number, the mean of the two in the middle. */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length / 2;
  return Number.isInteger(middle) ? (sorted[middle - 1]! + sorted[middle]!) / 2 : sorted[Math.floor(middle)]!;
}

/** The round whose rate is the median (of an even number, the lower of the two in the middle), for its latencies. */
export function medianLoad(loads: Load[]): Load {
  return [...loads].sort((a, b) => a.rate - b.rate)[Math.floor((loads.length - 1) / 2)]!;
}

export function sum(values: number[]): number {
  return values.reduce((total, value) => total + value, 0);
}

export function fmt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

export function ms(n: number): string {
  return `${n < 10 ? Number(n.toFixed(1)) : Math.round(n)} ms`;
}

export function mb(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

export function ratio(a: number, b: number): string {
  return (a / b).toFixed(2);
}
