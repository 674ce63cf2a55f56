/** CRC-16/KERMIT (RIFT.md §1): poly 0x1021 reflected (0x8408), init 0, no final XOR. */

const TABLE = (() => {
  const t = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x8408 : c >>> 1;
    t[i] = c;
  }
  return t;
})();

export function crc16kermit(data: Uint8Array, end = data.length): number {
  let c = 0;
  for (let i = 0; i < end; i++) c = (c >>> 8) ^ TABLE[(c ^ data[i]) & 0xff];
  return c;
}
