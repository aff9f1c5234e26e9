// tsc only emits .js; what the modules read at run time next to themselves is copied here:
// the Lua scripts, and the live page's HTML, CSS and browser JavaScript.
import { cpSync } from 'node:fs';

cpSync('src/redis/commands', 'dist/redis/commands', {
  recursive: true,
  filter: (path) => !path.includes('.') || path.endsWith('.lua'),
});
cpSync('src/http/public', 'dist/http/public', { recursive: true });
