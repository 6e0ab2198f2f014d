// The reference: @openzeppelin/merkle-tree's StandardMerkleTree. Reads {"values": [[hex, hex, "dec"], ...],
// "dump": {...} or null} on stdin; writes its root, every proof, and the root and validity of the given dump.
"use strict";
const { StandardMerkleTree } = require("@openzeppelin/merkle-tree");

let input = "";
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  const { values, dump } = JSON.parse(input);
  const tree = StandardMerkleTree.of(values, ["bytes32", "bytes32", "uint256"]);
  const out = { root: tree.root, proofs: values.map((_, i) => tree.getProof(i)), dump: tree.dump() };
  if (dump) {
    const loaded = StandardMerkleTree.load(dump);
    loaded.validate();
    out.loadedRoot = loaded.root;
  }
  process.stdout.write(JSON.stringify(out));
});
