#!/usr/bin/env node
// Writes crates/stripe-sandbox/src/http/stripe_params.txt: every parameter Stripe's API takes
// on each endpoint of the resources the sandbox serves, read from stripe-node's generated types
// (which Stripe generates from its OpenAPI spec). The sandbox uses it to tell a parameter
// Stripe does not have (Stripe's own `parameter_unknown`) from one Stripe has and the sandbox
// does not implement yet, and never to accept a parameter Stripe would refuse.
//
// A development tool, run after bumping `stripe` in end2end/package.json:
//   node scripts/stripe-params.mjs
// The output is committed; neither the build nor the tests run this.

import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'end2end', 'package.json'));
const ts = require('typescript');
const stripeDir = join(root, 'end2end', 'node_modules', 'stripe');
const resources = join(stripeDir, 'esm', 'resources');
const out = join(root, 'crates', 'stripe-sandbox', 'src', 'http', 'stripe_params.txt');

// The resources the sandbox serves (every endpoint under them is listed, served or not, so
// that a new route finds its parameters here).
const SERVED = [
  '/v1/billing/meter_events',
  '/v1/billing/meters',
  '/v1/billing_portal/',
  '/v1/charges',
  '/v1/checkout/sessions',
  '/v1/coupons',
  '/v1/customers',
  '/v1/disputes',
  '/v1/events',
  '/v1/invoice_payments',
  '/v1/invoices',
  '/v1/payment_intents',
  '/v1/payment_methods',
  '/v1/prices',
  '/v1/products',
  '/v1/promotion_codes',
  '/v1/refunds',
  '/v1/subscriptions',
  '/v1/test_helpers/test_clocks',
  '/v1/webhook_endpoints',
];
const served = (path) => SERVED.some((p) => path === p || path.startsWith(p.endsWith('/') ? p : `${p}/`));

function* walkDir(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* walkDir(path);
    else yield path;
  }
}

// Method name → [HTTP method, path] from the generated JavaScript of each resource.
const REQUEST = /^ {4}(\w+)\([^)]*\) \{\s*return this\._makeRequest\('(\w+)', [`'](\/v1\/[^`']*)[`']/gm;
const endpoints = [];
const declarations = [];
for (const file of walkDir(resources)) {
  if (!file.endsWith('.js') || file.endsWith('index.js')) continue;
  const source = readFileSync(file, 'utf8');
  for (const [, name, method, rawPath] of source.matchAll(REQUEST)) {
    const path = rawPath.replace(/\$\{[^}]*\}/g, '{}');
    if (served(path)) endpoints.push({ file: file.replace(/\.js$/, '.d.ts'), name, method, path });
  }
  declarations.push(file.replace(/\.js$/, '.d.ts'));
}

const program = ts.createProgram(declarations, { noEmit: true, strict: true });
const checker = program.getTypeChecker();

// The declared type of the `params` argument of `name` on the resource class in `file`.
function paramsType(file, name) {
  const sourceFile = program.getSourceFile(file);
  let found;
  const visit = (node) => {
    if (found) return;
    if (ts.isClassDeclaration(node)) {
      for (const member of node.members) {
        if (ts.isMethodDeclaration(member) && member.name.getText(sourceFile) === name) {
          const param = member.parameters.find((p) => p.name.getText(sourceFile) === 'params');
          if (param) found = checker.getTypeAtLocation(param);
        }
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(sourceFile);
  return found;
}

// Every leaf path of a parameter type: `a.b` for nested hashes, `#` for a list's items, `*`
// for a hash's free keys (metadata). A parameter that may also be a scalar or '' (Stripe's
// Emptyable) needs no leaf of its own: the sandbox reads a pattern as covering its prefixes.
function leaves(type, path, acc, depth) {
  if (depth > 8) return;
  const parts = type.isUnion() ? type.types : [type];
  let nested = false;
  for (const part of parts) {
    if (part.flags & (ts.TypeFlags.Undefined | ts.TypeFlags.Null)) continue;
    if (checker.isArrayType(part)) {
      nested = true;
      const [item] = checker.getTypeArguments(part);
      leaves(item, [...path, '#'], acc, depth + 1);
      continue;
    }
    if (part.flags & ts.TypeFlags.Object) {
      const props = checker.getPropertiesOfType(part);
      const index = checker.getIndexInfosOfType(part);
      for (const info of index) {
        nested = true;
        leaves(info.type, [...path, '*'], acc, depth + 1);
      }
      for (const prop of props) {
        nested = true;
        const propType = checker.getTypeOfSymbol(prop);
        leaves(propType, [...path, prop.getName()], acc, depth + 1);
      }
    }
  }
  if (!nested && path.length) acc.add(path.join('.'));
}

const table = new Map();
for (const { file, name, method, path } of endpoints) {
  const type = paramsType(file, name);
  if (!type) throw new Error(`no params type for ${name} in ${relative(stripeDir, file)}`);
  const acc = new Set();
  leaves(type, [], acc, 0);
  const key = `${method} ${path}`;
  const merged = table.get(key) ?? new Set();
  for (const leaf of acc) merged.add(leaf);
  table.set(key, merged);
}

const { version } = JSON.parse(readFileSync(join(stripeDir, 'package.json'), 'utf8'));
const spec = readFileSync(join(stripeDir, 'OPENAPI_VERSION'), 'utf8').trim();
const lines = [
  `# Generated by scripts/stripe-params.mjs from stripe-node ${version} (Stripe OpenAPI ${spec}).`,
  '# Do not edit: bump `stripe` in end2end/package.json and run the script again.',
  '# An endpoint line, then one parameter path per indented line.',
];
for (const key of [...table.keys()].sort()) {
  lines.push(key);
  for (const leaf of [...table.get(key)].sort()) lines.push(`  ${leaf}`);
}
writeFileSync(out, `${lines.join('\n')}\n`);
console.log(`${table.size} endpoints, ${lines.length - 3 - table.size} parameters -> ${relative(root, out)}`);
