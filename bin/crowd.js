#!/usr/bin/env node
// The installed binary runs the compiled code; `npm run build` makes dist/.
import '../dist/crowd.js';
