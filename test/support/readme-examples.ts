/**
 * The README's shell examples, as data: every fenced `sh` block is read as a session of `$ ` commands,
 * each with the lines it printed below it. Only what a test can replay is understood: `curl` (its -s,
 * -H, -d, -X and -u options and a URL on localhost:5000), `redis-cli` and `export NAME=value`; quotes,
 * `$NAME` in double quotes, line continuations and trailing `# comments` as a shell reads them.
 */
export interface ShellCommand {
  /** Line of the README where the command starts. */
  line: number;
  words: string[];
  /** What the README shows it printing (empty: nothing shown). */
  output: string;
  /** Its trailing comment, if any. */
  comment: string;
}

export function readmeCommands(readme: string): ShellCommand[] {
  const lines = readme.split('\n');
  const commands: ShellCommand[] = [];
  let inShell = false;
  let current: ShellCommand | undefined;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.startsWith('```')) {
      inShell = !inShell && line.trim() === '```sh';
      current = undefined;
      continue;
    }
    if (!inShell) continue;
    if (line.startsWith('$ ')) {
      let source = line.slice(2);
      const start = i + 1;
      // A quoted argument or a trailing backslash continues on the next line.
      while ((source.endsWith('\\') || !quotesClosed(source)) && i + 1 < lines.length) {
        source = source.endsWith('\\') ? `${source.slice(0, -1)} ${lines[++i]!.trim()}` : `${source}\n${lines[++i]!}`;
      }
      const { words, comment } = shellWords(source);
      current = { line: start, words, output: '', comment };
      commands.push(current);
    } else if (current) {
      current.output = current.output === '' ? line : `${current.output}\n${line}`;
    }
  }
  return commands;
}

function quotesClosed(source: string): boolean {
  let quote: string | undefined;
  for (let i = 0; i < source.length; i++) {
    const char = source[i]!;
    if (quote) {
      if (char === quote) quote = undefined;
    } else if (char === "'" || char === '"') quote = char;
    // The rest is a comment, whatever quotes it holds.
    else if (char === '#' && (i === 0 || /\s/.test(source[i - 1]!))) return true;
  }
  return quote === undefined;
}

/** Words as sh splits them (no globbing); `$NAME` in double quotes is kept for `expand`. */
function shellWords(source: string): { words: string[]; comment: string } {
  const words: string[] = [];
  let word: string | undefined;
  let quote: string | undefined;
  for (let i = 0; i < source.length; i++) {
    const char = source[i]!;
    if (quote) {
      if (char === quote) quote = undefined;
      else word += char;
      continue;
    }
    if (char === "'" || char === '"') {
      quote = char;
      word ??= '';
      continue;
    }
    if (/\s/.test(char)) {
      if (word !== undefined) words.push(word);
      word = undefined;
      continue;
    }
    if (char === '#' && word === undefined) return { words, comment: source.slice(i + 1).trim() };
    word = (word ?? '') + char;
  }
  if (word !== undefined) words.push(word);
  return { words, comment: '' };
}

export interface CurlRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string;
}

/** A README curl command as a request to the service (its `localhost:5000` is the test's). */
export function curlRequest(words: string[], variables: Record<string, string>): CurlRequest {
  const expand = (text: string) => text.replace(/\$(\w+)/g, (_, name: string) => variables[name] ?? '');
  const headers: Record<string, string> = {};
  let method: string | undefined;
  let body: string | undefined;
  let url: string | undefined;
  for (let i = 1; i < words.length; i++) {
    const word = expand(words[i]!);
    if (word === '-s') continue;
    // Where the output goes: the README then shows none.
    if (word === '-o') i++;
    else if (word === '-X') method = words[++i];
    else if (word === '-d') body = expand(words[++i]!);
    else if (word === '-H') {
      const header = expand(words[++i]!);
      const colon = header.indexOf(':');
      headers[header.slice(0, colon).trim().toLowerCase()] = header.slice(colon + 1).trim();
    } else if (word === '-u') headers.authorization = `Basic ${Buffer.from(expand(words[++i]!)).toString('base64')}`;
    else if (word.startsWith('localhost:5000')) url = word.slice('localhost:5000'.length) || '/';
    else throw new Error(`curl option not understood: ${word}`);
  }
  if (url === undefined) throw new Error(`curl without a localhost:5000 URL: ${words.join(' ')}`);
  // curl -d sends a form type, as the README says the API accepts.
  if (body !== undefined) headers['content-type'] ??= 'application/x-www-form-urlencoded';
  return { method: method ?? (body === undefined ? 'GET' : 'POST'), path: url, headers, ...(body === undefined ? {} : { body }) };
}

/** An answer the README shows, where `...,` stands for items left out of a list. */
export function shownJson(output: string): unknown {
  return JSON.parse(output.replace(/\.\.\.,/g, ''));
}

/** Fields whose values differ from run to run: only their presence is compared. */
// (`backend` depends on the server's modules.)
const VARYING = new Set(['backend', 'ts', 'stream_id', 'added_at', 'expires_at', 'updated_at', 'from', 'to', 'url', 'version', 'rules_version']);

/**
 * Where `actual` (a real answer) differs from `shown` (the README's): the same fields everywhere,
 * the same strings and booleans except VARYING ones, the same shape of array items. Counts may
 * differ (a test's traffic is not the README's); the numbers of a verdict's reason may not.
 */
export function differences(actual: unknown, shown: unknown, path = ''): string[] {
  if (Array.isArray(shown)) {
    if (!Array.isArray(actual)) return [`${path}: an array in the README, ${JSON.stringify(actual)} in the answer`];
    if (shown.length === 0 || actual.length === 0) return [];
    // Items of a list of results are compared one by one; of other lists, the first for its shape.
    const pairs = path.endsWith('results') ? shown.map((item, i) => [actual[i], item] as const) : [[actual[0], shown[0]] as const];
    return pairs.flatMap(([a, s], i) => differences(a, s, `${path}[${i}]`));
  }
  if (typeof shown === 'object' && shown !== null) {
    if (typeof actual !== 'object' || actual === null || Array.isArray(actual)) return [`${path}: an object in the README, ${JSON.stringify(actual)} in the answer`];
    const [a, s] = [actual as Record<string, unknown>, shown as Record<string, unknown>];
    const problems: string[] = [];
    const missing = Object.keys(a).filter((key) => !(key in s));
    const extra = Object.keys(s).filter((key) => !(key in a));
    if (missing.length > 0) problems.push(`${path || 'the answer'} has ${missing.join(', ')}, which the README does not show`);
    if (extra.length > 0) problems.push(`${path || 'the answer'} lacks ${extra.join(', ')}, which the README shows`);
    for (const key of Object.keys(s)) if (key in a && !VARYING.has(key)) problems.push(...differences(a[key], s[key], path ? `${path}.${key}` : key));
    return problems;
  }
  const inReason = /(^|\.)(reason|shadow\[\d+\])\./.test(path) || path.startsWith('reason');
  if (typeof shown === 'number' && typeof actual === 'number' && !inReason) return [];
  return actual === shown ? [] : [`${path}: ${JSON.stringify(actual)} in the answer, ${JSON.stringify(shown)} in the README`];
}
