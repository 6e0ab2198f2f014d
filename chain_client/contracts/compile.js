// Compile the reward contracts with the pinned solc (wasm) through standard JSON, and write one artifact per
// contract (ABI, creation and runtime bytecode, the compiler and its settings) to build/ or to the folder given.
// Usage: node chain_client/contracts/compile.js [OUT_DIR]
"use strict";
const fs = require("fs");
const path = require("path");
const solc = require("solc");

const SOLC_VERSION = "0.8.37";
const CONTRACTS = ["ThreeDPToken", "BoxRegistry", "PrintRewards"];
const SETTINGS = {
  evmVersion: "cancun",
  optimizer: { enabled: true, runs: 1000 },
  viaIR: false,
  metadata: { bytecodeHash: "ipfs" },
  outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object", "evm.deployedBytecode.immutableReferences"] } },
};

const here = __dirname;
const out = path.resolve(process.argv[2] || path.join(here, "build"));

if (!solc.version().startsWith(SOLC_VERSION + "+")) {
  console.error("solc " + SOLC_VERSION + " is needed, found " + solc.version() + " (run npm ci)");
  process.exit(2);
}

// Source unit names are relative ("PrintRewards.sol", "@openzeppelin/..."), so the metadata hash in the
// bytecode does not depend on where the repository is checked out.
const sources = {};
for (const name of CONTRACTS) {
  sources[name + ".sol"] = { content: fs.readFileSync(path.join(here, name + ".sol"), "utf8") };
}

function findImport(unit) {
  try {
    if (unit.startsWith("@openzeppelin/contracts/")) {
      const file = require.resolve("@openzeppelin/contracts/package.json", { paths: [here] });
      return { contents: fs.readFileSync(path.join(path.dirname(file), unit.slice(24)), "utf8") };
    }
    return { contents: fs.readFileSync(path.join(here, unit), "utf8") };
  } catch (err) {
    return { error: "cannot import " + unit + ": " + err.message };
  }
}

const input = { language: "Solidity", sources, settings: SETTINGS };
const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImport }));
const errors = (output.errors || []).filter((e) => e.severity === "error");
for (const e of output.errors || []) console.error(e.formattedMessage);
if (errors.length) process.exit(1);

fs.mkdirSync(out, { recursive: true });
for (const name of CONTRACTS) {
  const c = output.contracts[name + ".sol"][name];
  const artifact = {
    contractName: name,
    abi: c.abi,
    bytecode: "0x" + c.evm.bytecode.object,
    deployedBytecode: "0x" + c.evm.deployedBytecode.object,
    // where the runtime code holds immutables (set at deployment): [start, length] byte ranges
    immutableRanges: Object.values(c.evm.deployedBytecode.immutableReferences || {})
      .flat()
      .map((r) => [r.start, r.length])
      .sort((a, b) => a[0] - b[0]),
    compiler: { name: "solc", version: solc.version(), settings: { ...SETTINGS, outputSelection: undefined } },
  };
  fs.writeFileSync(path.join(out, name + ".json"), JSON.stringify(artifact, null, 1) + "\n");
}
console.log("compiled " + CONTRACTS.join(", ") + " with solc " + solc.version() + " into " + out);
