// gguf_check.mjs — reads a GGUF file with @huggingface/gguf (an independent parser) and prints
// one JSON line: architecture, the shape's numbers from the metadata, the vocabulary size, tensor
// count, how many tensors of each ggml type, the embedding's shape, and whether the tensor data
// is laid out as the format requires (each tensor at a 32-byte aligned offset, none overlapping,
// the last one ending where the file ends, after alignment padding).
// usage: node tests/node/gguf_check.mjs FILE.gguf
import fs from "node:fs";
import path from "node:path";
import { gguf, GGMLQuantizationType } from "@huggingface/gguf";

const file = path.resolve(process.argv[2]);
const { metadata, tensorInfos, tensorDataOffset } = await gguf(file, { allowLocalFile: true });
// Bytes per block and weights per block, from ggml's block definitions (ggml-common.h).
const blocks = { F32: [4, 1], F16: [2, 1], BF16: [2, 1], Q4_0: [18, 32], Q8_0: [34, 32], Q6_K: [210, 256] };
const types = {};
let end = 0n, aligned = true, overlapping = false;
const sorted = [...tensorInfos].sort((a, b) => (a.offset < b.offset ? -1 : 1));
for (const t of sorted) {
  const name = GGMLQuantizationType[t.dtype];
  types[name] = (types[name] ?? 0) + 1;
  const [bytes, per] = blocks[name] ?? [NaN, 1];
  const count = t.shape.reduce((a, b) => a * b, 1n);
  if (t.offset % 32n !== 0n) aligned = false;
  if (t.offset < end) overlapping = true;
  end = t.offset + (count / BigInt(per)) * BigInt(bytes);
}
end += tensorDataOffset; // offsets count from the start of the data section
const padded = ((end + 31n) / 32n) * 32n;
const size = BigInt(fs.statSync(file).size);
const embd = tensorInfos.find((t) => t.name === "token_embd.weight");
const arch = metadata["general.architecture"];
console.log(JSON.stringify({
  architecture: arch,
  layers: metadata[`${arch}.block_count`],
  dim: metadata[`${arch}.embedding_length`],
  heads: metadata[`${arch}.attention.head_count`],
  kv_heads: metadata[`${arch}.attention.head_count_kv`],
  ffn: metadata[`${arch}.feed_forward_length`],
  vocab: metadata["tokenizer.ggml.tokens"]?.length,
  byte_token: metadata["tokenizer.ggml.tokens"]?.[3 + 0x0a],
  tensors: tensorInfos.length,
  types,
  embd_shape: embd ? embd.shape.map(Number) : null,
  aligned,
  overlapping,
  ends_at_file_end: end === size || padded === size,
}));
