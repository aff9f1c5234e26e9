import { Help } from 'commander';
import { SETTINGS } from '../config.js';

/**
 * The settings, for `--help`: name, default and meaning, as in the README's table. A command that
 * reads the service's environment lists them, so that its help is complete without the README.
 */
export function settingsHelp(): string {
  const help = new Help();
  help.helpWidth = process.stdout.columns || 80;
  const names = Object.keys(SETTINGS);
  const width = Math.max(...names.map((name) => name.length)) + 2;
  const rows = Object.entries(SETTINGS).map(([name, { default: value, doc }]) =>
    help.formatItem(name, width, `${doc.replaceAll('`', '')} [default: ${value ?? 'unset'}]`, help),
  );
  return `\nSettings (environment variables; an empty value counts as unset):\n${rows.join('\n')}\n`;
}
