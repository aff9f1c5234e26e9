import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SETTINGS } from '../src/config.js';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

describe('the README', () => {
  it.each(Object.entries(SETTINGS))('lists %s with its default and meaning', (name, setting) => {
    const row = readme.split('\n').find((line) => line.startsWith(`| \`${name}\` |`));
    expect(row, `no settings row for ${name}`).toBeDefined();
    const cells = row!.split(' | ');
    expect(cells[1]).toBe(setting.default === undefined ? '(unset)' : `\`${setting.default}\``);
    expect(row).toContain(setting.doc);
  });

  it('gives the test command CI runs', () => {
    expect(readme).toContain('npm test');
    expect(readFileSync(new URL('../.ci/run', import.meta.url), 'utf8')).toMatch(/^(\w+=\S+ )*npm test$/m);
  });
});
