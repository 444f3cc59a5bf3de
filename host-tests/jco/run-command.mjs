// Runs a jco-transpiled wasi:cli command in Node with preview2-shim, as `wasmtime run` runs one:
// `node run-command.mjs OUT/NAME.js [HOST::GUEST]... -- ARGS...` (each HOST::GUEST a preopened
// directory, read-write like `wasmtime run --dir`). The transpiled module must sit under this
// folder, so that its `@bytecodealliance/preview2-shim` imports resolve to the same modules this
// script configures.
import { pathToFileURL } from "node:url";
import { _setArgs } from "@bytecodealliance/preview2-shim/cli";
import { _setPreopens } from "@bytecodealliance/preview2-shim/filesystem";

const [module, ...rest] = process.argv.slice(2);
const split = rest.indexOf("--");
if (!module || split < 0) {
  console.error("usage: node run-command.mjs OUT/NAME.js [HOST::GUEST]... -- ARGS...");
  process.exit(2);
}
const preopens = {};
for (const dir of rest.slice(0, split)) {
  const at = dir.lastIndexOf("::");
  preopens[dir.slice(at + 2)] = dir.slice(0, at);
}
_setPreopens(preopens);
const program = module.split("/").pop().replace(/\.js$/, ".wasm");
_setArgs([program, ...rest.slice(split + 1)]);
const command = await import(pathToFileURL(module).href);
command.run.run();
