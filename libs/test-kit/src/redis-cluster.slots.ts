import { redisCli } from './redis-servers.launcher';

// CRC16/XMODEM as Redis Cluster computes key slots, with the {hash tag} rule: the server's keys and channels
// for a connection are `mpr:{<tenant>:<connectionId>}:…` (both parts with '%', ':', '{', '}' percent-encoded, as the
// server's redis/connection-hash.tag.ts writes them), so a connection lives on the master owning that tag's slot.
const CRC_TABLE = (() => {
  const table = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let crc = i << 8;
    for (let j = 0; j < 8; j++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    table[i] = crc;
  }
  return table;
})();

export function connectionSlot(connectionId: string, tenant = 'default'): number {
  const encode = (part: string) => part.replace(/[%:{}]/g, (char) => `%${char.charCodeAt(0).toString(16).toUpperCase()}`);
  let crc = 0;
  for (const byte of Buffer.from(`${encode(tenant)}:${encode(connectionId)}`))
    crc = ((crc << 8) & 0xffff) ^ CRC_TABLE[((crc >> 8) ^ byte) & 0xff];
  return crc % 16384;
}

/** `host:port` of the master owning a slot, from CLUSTER NODES on `port`. */
export async function slotOwners(port: number): Promise<(slot: number) => string> {
  const stdout = await redisCli(port, 'cluster', 'nodes');
  const ranges: { from: number; to: number; address: string }[] = [];
  for (const line of stdout.trim().split('\n')) {
    const parts = line.split(' ');
    if (!parts[2]?.includes('master')) continue;
    const address = parts[1].split('@')[0];
    for (const range of parts.slice(8)) {
      if (range.startsWith('[')) continue;
      const [from, to] = range.split('-').map(Number);
      ranges.push({ from, to: to ?? from, address });
    }
  }
  return (slot) => {
    const owner = ranges.find((range) => slot >= range.from && slot <= range.to);
    if (!owner) throw new Error(`no master owns slot ${slot}`);
    return owner.address;
  };
}
