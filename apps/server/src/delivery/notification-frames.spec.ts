import { buildNotificationFrames, NotifiedMessage } from './notification-frames';

interface ParsedFrame {
  jsonrpc: string;
  method: string;
  params: { connectionId: string; messages: { id: string; receivedAt: string; encryptedMessage: unknown }[] };
}

const receivedAt = '2025-01-02T03:04:05.678Z';

function message(id: string, payload: unknown): NotifiedMessage {
  return { id, receivedAt, payload: JSON.stringify(payload) };
}

/** Deterministic pseudo-random generator, so failures reproduce. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

function parse(frame: string): ParsedFrame {
  const parsed = JSON.parse(frame) as ParsedFrame;
  expect(Object.keys(parsed).sort()).toEqual(['jsonrpc', 'method', 'params']); // a notification: no id
  expect(parsed.jsonrpc).toBe('2.0');
  expect(parsed.method).toBe('messagesReceived');
  expect(Object.keys(parsed.params).sort()).toEqual(['connectionId', 'messages']);
  for (const m of parsed.params.messages) expect(Object.keys(m).sort()).toEqual(['encryptedMessage', 'id', 'receivedAt']);
  return parsed;
}

/** The checks every split must pass: shape, order, counts, payload fidelity, and the frame bound. */
function checkSplit(connectionId: string, messages: NotifiedMessage[], maxFrameBytes: number) {
  const frames = buildNotificationFrames(connectionId, messages, maxFrameBytes);
  expect(frames.reduce((sum, f) => sum + f.messageCount, 0)).toBe(messages.length);
  let offset = 0;
  for (const { frame, messageCount } of frames) {
    const parsed = parse(frame);
    expect(parsed.params.connectionId).toBe(connectionId);
    expect(messageCount).toBeGreaterThan(0);
    expect(parsed.params.messages).toHaveLength(messageCount);
    parsed.params.messages.forEach((m, i) => {
      const input = messages[offset + i];
      expect(m.id).toBe(input.id);
      expect(m.receivedAt).toBe(input.receivedAt);
      expect(m.encryptedMessage).toEqual(JSON.parse(input.payload));
    });
    // within the bound, unless the frame carries one message that alone does not fit
    if (messageCount > 1) expect(Buffer.byteLength(frame)).toBeLessThanOrEqual(maxFrameBytes);
    offset += messageCount;
  }
  return frames;
}

describe('buildNotificationFrames', () => {
  it('builds nothing for no messages', () => {
    expect(buildNotificationFrames('c', [], 10_000)).toEqual([]);
  });

  it('puts messages that fit into one frame, in order, with the payload embedded verbatim', () => {
    const payloads = [{ protected: 'a', ciphertext: 'b' }, { nested: { list: [1, 'two', null, true] } }, { text: 'ü€😀 "quoted" \\ \n' }];
    const messages = payloads.map((payload, i) => message(`m-${i}`, payload));
    const frames = checkSplit('conn-1', messages, 100_000);
    expect(frames).toHaveLength(1);
    expect(frames[0].messageCount).toBe(3);
    // verbatim: the stored JSON text appears as is, not re-serialised
    for (const m of messages) expect(frames[0].frame).toContain(`"encryptedMessage":${m.payload}`);
    expect(parse(frames[0].frame).params.messages.map((m) => m.encryptedMessage)).toEqual(payloads);
  });

  it('escapes connection ids and message ids that need it', () => {
    const connectionId = 'conn "with" quotes \\ and ünicode\n';
    const frames = checkSplit(connectionId, [message('id "1" \\', { a: 1 })], 10_000);
    expect(parse(frames[0].frame).params.messages[0].id).toBe('id "1" \\');
  });

  it('splits at the frame limit, keeping every frame within it', () => {
    const messages = Array.from({ length: 50 }, (_, i) => message(`m-${i}`, { i, data: 'x'.repeat(200) }));
    const one = Buffer.byteLength(buildNotificationFrames('c', [messages[0]], 1_000_000)[0].frame);
    const maxFrameBytes = 3 * one; // room for two or three messages per frame, never all
    const frames = checkSplit('c', messages, maxFrameBytes);
    expect(frames.length).toBeGreaterThan(1);
    for (const { frame } of frames) expect(Buffer.byteLength(frame)).toBeLessThanOrEqual(maxFrameBytes);
  });

  it('fills frames: a frame is closed only when the next message would not fit', () => {
    const messages = Array.from({ length: 40 }, (_, i) => message(`m-${i}`, { data: 'y'.repeat(50 + ((i * 37) % 300)) }));
    const maxFrameBytes = 2000;
    const frames = checkSplit('c', messages, maxFrameBytes);
    let offset = 0;
    for (let f = 0; f < frames.length - 1; f++) {
      offset += frames[f].messageCount;
      const withNext = buildNotificationFrames('c', messages.slice(offset - frames[f].messageCount, offset + 1), Number.MAX_SAFE_INTEGER)[0]
        .frame;
      // (the builder may keep one byte of slack)
      expect(Buffer.byteLength(withNext)).toBeGreaterThanOrEqual(maxFrameBytes);
    }
  });

  it('measures bytes, not characters, so multi-byte payloads also stay within the limit', () => {
    const messages = Array.from({ length: 30 }, (_, i) => message(`m-${i}`, { text: '€😀'.repeat(100 + i) }));
    const maxFrameBytes = 4000;
    const frames = checkSplit('c', messages, maxFrameBytes);
    expect(frames.length).toBeGreaterThan(1);
    for (const { frame } of frames) expect(Buffer.byteLength(frame)).toBeLessThanOrEqual(maxFrameBytes);
  });

  it('gives a single message larger than the limit a frame of its own, and keeps going', () => {
    const small = (id: string) => message(id, { s: 'small' });
    const big = message('big', { data: 'z'.repeat(5000) });
    const frames = checkSplit('c', [small('a'), small('b'), big, small('c'), small('d')], 1000);
    expect(frames.map((f) => f.messageCount)).toEqual([2, 1, 2]);
    expect(parse(frames[1].frame).params.messages.map((m) => m.id)).toEqual(['big']);
    expect(Buffer.byteLength(frames[1].frame)).toBeGreaterThan(1000);
  });

  it('a big message first, or alone, still gets its frame', () => {
    const big = message('big', { data: 'z'.repeat(5000) });
    expect(checkSplit('c', [big], 100).map((f) => f.messageCount)).toEqual([1]);
    expect(checkSplit('c', [big, big, message('s', {})], 100).map((f) => f.messageCount)).toEqual([1, 1, 1]);
  });

  it('holds for random sizes and limits', () => {
    const random = prng(42);
    for (let round = 0; round < 20; round++) {
      const count = Math.floor(random() * 60);
      const messages = Array.from({ length: count }, (_, i) =>
        message(`r${round}-${i}`, { d: 'q'.repeat(Math.floor(random() * 3000)), u: 'é'.repeat(Math.floor(random() * 50)) }),
      );
      const maxFrameBytes = 300 + Math.floor(random() * 10_000);
      const frames = checkSplit(`conn-${round}`, messages, maxFrameBytes);
      if (count === 0) expect(frames).toEqual([]);
    }
  });
});
