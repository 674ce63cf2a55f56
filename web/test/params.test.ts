import assert from "node:assert/strict";
import { test } from "node:test";
import { LinkError, parseLink } from "../src/app/params.js";

const ID = "Sw-Kq4KvhIJXlfAAEEh2R-PiVU5k7KmB43sKT0I7Rqo";
const H = "Bm0Jd-5F9ieYYU5B64cLw6gbaa6vIkdHE8_V-9DhnOU";

test("the link's fragment and query", () => {
  const t = parseLink({ hash: `#h=${H}&id=${ID}`, search: "?transport=websocket", host: "10.0.0.2:47801" });
  assert.deepEqual(t.authorities, ["10.0.0.2:47801"]);
  assert.equal(t.hostId, ID);
  assert.equal(t.certHashes[0].length, 32);
  assert.equal(t.transport, "websocket");
});

test("options appended after the fragment still count", () => {
  const t = parseLink({ hash: `#h=${H}&id=${ID}?transport=websocket&marker=1`, search: "", host: "h:1" });
  assert.equal(t.hostId, ID);
  assert.equal(t.transport, "websocket");
  assert.equal(t.marker, true);
  assert.equal(parseLink({ hash: `#h=${H}&id=${ID}&transport=webtransport`, search: "", host: "h:1" }).transport, "webtransport");
});

test("a damaged link is one clear error", () => {
  assert.throws(() => parseLink({ hash: `#h=${H}&id=short`, search: "", host: "h:1" }), LinkError);
  assert.throws(() => parseLink({ hash: `#h=abc&id=${ID}`, search: "", host: "h:1" }), LinkError);
  assert.throws(() => parseLink({ hash: `#h=${H}`, search: "?transport=carrier-pigeon", host: "h:1" }), /unknown transport/);
  assert.equal(parseLink({ hash: "", search: "", host: "h:1" }).hostId, null);
});
