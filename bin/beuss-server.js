#!/usr/bin/env node
'use strict';
require('../dist/cjs/server/main.js').main(process.argv.slice(2));
