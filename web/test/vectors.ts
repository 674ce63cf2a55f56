// Locations of the outside vectors (tests/vectors/ in the repository) for the node tests.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

// dist-test/<name>.test.mjs → repository root is two levels up
const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

export function vector<T = unknown>(relative: string): T {
  return JSON.parse(readFileSync(join(root, "tests", "vectors", relative), "utf8")) as T;
}

/** A file the Python test writes before running node (WAVRY_WEB_FIXTURES), or null. */
export function fixture<T = unknown>(name: string): T | null {
  const dir = process.env.WAVRY_WEB_FIXTURES;
  if (!dir) return null;
  return JSON.parse(readFileSync(join(dir, name), "utf8")) as T;
}
