#!/usr/bin/env node
// A native-solc look-alike over the npm `solc` (solcjs, wasm) compiler.
//
// py-solc-x, ape-solidity and forge drive a native `solc` executable; none can be
// downloaded on these machines, so this script answers the parts of solc's command line
// they use: --version, --help, --standard-json (stdin -> stdout, imports resolved from
// --base-path / --include-path) and --combined-json for compile_source/compile_files.
// `veritrain.dev.solc.install_lookalike` writes a copy with SOLCJS_PATH filled in.
"use strict";

const fs = require("fs");
const path = require("path");

const SOLCJS_PATH = process.env.VERITRAIN_SOLCJS || "__SOLCJS_PATH__";
// The checkout whose node_modules holds solc: a last-resort import root, because
// ape-solidity compiles from a temporary copy of the project without node_modules.
const PROJECT_ROOT = path.resolve(SOLCJS_PATH, "..", "..");

function loadSolc() {
  try {
    return require(SOLCJS_PATH);
  } catch (err) {
    process.stderr.write(
      `solc look-alike: npm solc not found at ${SOLCJS_PATH} (${err.message}); run \`make setup\`\n`,
    );
    process.exit(2);
  }
}

// Let node drain large outputs: process.exit() right after a big write truncates (~96 KiB).
function finish(text, code) {
  process.stdout.write(text);
  process.exitCode = code;
}

function parseArgs(argv) {
  const opts = { includePaths: [], files: [], remappings: [], flags: new Set() };
  const withValue = new Set([
    "--base-path", "--include-path", "--allow-paths", "--combined-json", "--optimize-runs",
    "--evm-version", "--output-dir", "-o",
  ]);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (withValue.has(a)) {
      const v = argv[++i];
      if (a === "--include-path") opts.includePaths.push(v);
      else opts[a.replace(/^-+/, "")] = v;
    } else if (a.startsWith("--") && a.includes("=")) {
      const [k, v] = a.split(/=(.*)/s);
      if (k === "--include-path") opts.includePaths.push(v);
      else opts[k.replace(/^-+/, "")] = v;
    } else if (a.startsWith("-")) {
      opts.flags.add(a);
    } else if (a.includes("=")) {
      opts.remappings.push(a);
    } else {
      opts.files.push(a);
    }
  }
  return opts;
}

function makeImportCallback(opts) {
  const roots = [opts["base-path"] || process.cwd(), ...opts.includePaths, process.cwd(), PROJECT_ROOT];
  return function findImports(importPath) {
    const candidates = path.isAbsolute(importPath)
      ? [importPath]
      : roots.map((r) => path.resolve(r, importPath));
    for (const c of candidates) {
      if (fs.existsSync(c) && fs.statSync(c).isFile()) {
        return { contents: fs.readFileSync(c, "utf8") };
      }
    }
    return { error: `File not found: ${importPath} (searched ${roots.join(", ")})` };
  };
}

const HELP = `solc, the solidity compiler commandline interface (solcjs look-alike)
Usage: solc [options] [input_file...]

Output Components:
  --combined-json abi,bin,bin-runtime,devdoc,hashes,metadata,userdoc
                       Output a single json document containing the specified information.
Input Options:
  --standard-json      Switch to Standard JSON input / output mode.
  --base-path path     Use the given path as the root of the source tree.
  --include-path path  Make an additional source directory available to the import callback.
  --allow-paths path(s) Accepted for compatibility; imports resolve via the paths above.
`;

function standardJson(opts) {
  const solc = loadSolc();
  const input = fs.readFileSync(0, "utf8");
  const output = solc.compile(input, { import: makeImportCallback(opts) });
  finish(output, 0);
}

function combinedJson(opts) {
  const solc = loadSolc();
  const wanted = opts["combined-json"].split(",");
  const sources = {};
  for (const f of opts.files) sources[f] = { content: fs.readFileSync(f, "utf8") };
  const sel = ["abi", "evm.bytecode.object", "evm.deployedBytecode.object",
    "evm.methodIdentifiers", "metadata", "devdoc", "userdoc"];
  const settings = { outputSelection: { "*": { "*": sel } }, remappings: opts.remappings };
  if (opts.flags.has("--optimize")) {
    settings.optimizer = { enabled: true, runs: Number(opts["optimize-runs"] || 200) };
  }
  if (opts["evm-version"]) settings.evmVersion = opts["evm-version"];
  const out = JSON.parse(solc.compile(
    JSON.stringify({ language: "Solidity", sources, settings }),
    { import: makeImportCallback(opts) },
  ));
  const errors = (out.errors || []).filter((e) => e.severity === "error");
  if (errors.length) {
    process.stderr.write(errors.map((e) => e.formattedMessage).join("\n") + "\n");
    process.exitCode = 1;
    return;
  }
  const contracts = {};
  for (const [file, byName] of Object.entries(out.contracts || {})) {
    for (const [name, c] of Object.entries(byName)) {
      const entry = {};
      if (wanted.includes("abi")) entry.abi = c.abi;
      if (wanted.includes("bin")) entry.bin = c.evm.bytecode.object;
      if (wanted.includes("bin-runtime")) entry["bin-runtime"] = c.evm.deployedBytecode.object;
      if (wanted.includes("hashes")) entry.hashes = c.evm.methodIdentifiers;
      if (wanted.includes("metadata")) entry.metadata = c.metadata;
      if (wanted.includes("devdoc")) entry.devdoc = c.devdoc;
      if (wanted.includes("userdoc")) entry.userdoc = c.userdoc;
      contracts[`${file}:${name}`] = entry;
    }
  }
  finish(JSON.stringify({ contracts, sourceList: Object.keys(sources), version: solc.version() }), 0);
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (opts.flags.has("--version")) {
    const solc = loadSolc();
    return finish(`solc, the solidity compiler commandline interface\nVersion: ${solc.version()}\n`, 0);
  }
  if (opts.flags.has("--help")) return finish(HELP, 0);
  if (opts.flags.has("--standard-json")) return standardJson(opts);
  if (opts["combined-json"]) return combinedJson(opts);
  process.stderr.write("solc look-alike: supports --version, --help, --standard-json, --combined-json\n");
  process.exitCode = 1;
}

main();
