#!/usr/bin/env node
// `warden` (docs/cli.md): runs the TypeScript CLI in src/cli straight from a checkout, through
// tsx's loaders, the same ones `node --import tsx` installs for the services. Both are needed:
// src/ is CommonJS (package.json has no "type": "module"), loaded here from an ES module.
import process from 'node:process';
import { register as registerCjs } from 'tsx/cjs/api';
import { register as registerEsm } from 'tsx/esm/api';

registerEsm();
registerCjs();
// a CommonJS module's exports arrive as the default export
const { main } = (await import('../src/cli/main.ts')).default;
process.exitCode = await main(process.argv);
