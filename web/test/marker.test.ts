import assert from "node:assert/strict";
import { test } from "node:test";
import { readMarkerLuma } from "../src/app/marker.js";
import { fixture } from "./vectors.js";

const frames = fixture<Array<{ width: number; height: number; luma: string; frame_id: number; timestamp_us: number }>>("marker.json");

test("reads the synthetic source's marker drawn by Python", { skip: frames === null && "run from pytest (tests/web)" }, () => {
  for (const f of frames!) {
    const luma = Uint8Array.from(Buffer.from(f.luma, "base64"));
    assert.deepEqual(readMarkerLuma(luma, f.width, f.width, f.height), { frameId: f.frame_id, timestampUs: f.timestamp_us });
    const broken = luma.slice();
    broken.fill(235, 0, f.width * 16); // white-out the first rows: the CRC must catch it
    assert.equal(readMarkerLuma(broken, f.width, f.width, f.height), null);
  }
});
