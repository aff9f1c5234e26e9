// tsc only emits .js; the Lua scripts are read at run time next to the module that loads them.
import { cpSync } from 'node:fs';

cpSync('src/redis/commands', 'dist/redis/commands', {
  recursive: true,
  filter: (path) => !path.includes('.') || path.endsWith('.lua'),
});
