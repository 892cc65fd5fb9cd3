/** A seeded pseudo-random generator (xorshift32): a run is reproduced from its seed. */
export class Random {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0 || 0x9e3779b9;
  }

  next(): number {
    let x = this.state;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.state = x >>> 0;
    return this.state / 2 ** 32;
  }

  below(n: number): number {
    return Math.floor(this.next() * n);
  }

  pick<T>(items: readonly T[]): T {
    return items[this.below(items.length)];
  }

  chance(p: number): boolean {
    return this.next() < p;
  }
}

const INTERESTING_BYTES = [0x00, 0x01, 0x7f, 0x80, 0xff, 0x22, 0x5c, 0x7b, 0x7d, 0x5b, 0x5d, 0x2c, 0x3a, 0x20, 0x0a];
const INTERESTING_NUMBERS = [
  0,
  -0,
  1,
  -1,
  0.5,
  1e308,
  -1e308,
  2 ** 31,
  2 ** 32,
  2 ** 53,
  2 ** 53 + 2,
  -(2 ** 53),
  1e-7,
  100,
  1001,
  4_194_305,
  604_800_001,
];
const INTERESTING_STRINGS = [
  '',
  ' ',
  '\u0000',
  'a'.repeat(513),
  'é'.repeat(300),
  '😀',
  '\uD800',
  '2.0',
  '1.0',
  'null',
  '__proto__',
  'constructor',
  'toString',
  '{',
  '"',
  '\\',
];

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/**
 * Mutations for inputs that are mostly JSON: byte-level ones (flips, insertions, deletions, splices, dictionary
 * words), which reach the parser's error paths, and structural ones on the parsed value (a node replaced by a value
 * of another type, keys added from the dictionary or removed, arrays grown, the whole wrapped in a batch), which
 * keep the input valid JSON and so reach validation and dispatch.
 */
export class JsonAwareMutator {
  constructor(
    private readonly random: Random,
    private readonly dictionary: readonly string[],
    private readonly maxBytes: number,
  ) {}

  /** One to four stacked mutations of `input`; `other` (another corpus entry) may be spliced in. */
  mutate(input: Buffer, other: Buffer): Buffer {
    let current = input;
    const rounds = 1 + this.random.below(4);
    for (let round = 0; round < rounds; round++) {
      current = this.random.chance(0.5) ? (this.structural(current) ?? this.bytes(current, other)) : this.bytes(current, other);
    }
    return current.length > this.maxBytes ? current.subarray(0, this.maxBytes) : current;
  }

  private bytes(input: Buffer, other: Buffer): Buffer {
    const r = this.random;
    const at = (length: number) => r.below(length + 1);
    switch (r.below(8)) {
      case 0: {
        if (input.length === 0) return Buffer.from([r.below(256)]);
        const copy = Buffer.from(input);
        copy[r.below(copy.length)] ^= 1 << r.below(8);
        return copy;
      }
      case 1: {
        if (input.length === 0) return Buffer.from([r.pick(INTERESTING_BYTES)]);
        const copy = Buffer.from(input);
        copy[r.below(copy.length)] = r.chance(0.5) ? r.pick(INTERESTING_BYTES) : r.below(256);
        return copy;
      }
      case 2: {
        const position = at(input.length);
        const inserted = Buffer.from(
          Array.from({ length: 1 + r.below(8) }, () => (r.chance(0.5) ? r.pick(INTERESTING_BYTES) : r.below(256))),
        );
        return Buffer.concat([input.subarray(0, position), inserted, input.subarray(position)]);
      }
      case 3: {
        if (input.length < 2) return input;
        const start = r.below(input.length);
        const end = Math.min(input.length, start + 1 + r.below(16));
        return Buffer.concat([input.subarray(0, start), input.subarray(end)]);
      }
      case 4: {
        if (input.length === 0) return input;
        const start = r.below(input.length);
        const chunk = input.subarray(start, Math.min(input.length, start + 1 + r.below(32)));
        const position = at(input.length);
        return Buffer.concat([input.subarray(0, position), chunk, input.subarray(position)]);
      }
      case 5: {
        const position = at(input.length);
        const word = r.pick(this.dictionary);
        return Buffer.concat([
          input.subarray(0, position),
          Buffer.from(r.chance(0.5) ? JSON.stringify(word) : word),
          input.subarray(position),
        ]);
      }
      case 6: {
        // Crossover: the head of this input, the tail of another.
        const head = input.subarray(0, at(input.length));
        const tail = other.subarray(r.below(other.length + 1));
        return Buffer.concat([head, tail]);
      }
      default: {
        const text = input.toString('latin1');
        const numbers = [...text.matchAll(/-?\d+(\.\d+)?([eE][+-]?\d+)?/g)];
        if (numbers.length === 0) return input;
        const match = r.pick(numbers);
        const replacement = String(r.pick(INTERESTING_NUMBERS));
        return Buffer.from(text.slice(0, match.index) + replacement + text.slice(match.index! + match[0].length), 'latin1');
      }
    }
  }

  /** A mutation of the parsed value, or undefined when the input is not JSON. */
  private structural(input: Buffer): Buffer | undefined {
    let value: Json;
    try {
      value = JSON.parse(input.toString('utf8')) as Json;
    } catch {
      return undefined;
    }
    const r = this.random;
    let mutated: Json;
    switch (r.below(6)) {
      case 0:
        mutated = Array.isArray(value) ? [...value, ...(value.length > 0 ? [r.pick(value)] : [])] : [value, value];
        break;
      case 1:
        mutated = Array.isArray(value) && value.length > 0 ? r.pick(value) : value;
        break;
      default:
        mutated = this.mutateNode(value, 0);
    }
    return Buffer.from(JSON.stringify(mutated) ?? 'null');
  }

  /** Walks down to a random node and changes it (or one of its members). */
  private mutateNode(value: Json, depth: number): Json {
    const r = this.random;
    const descend = depth < 8 && r.chance(0.7);
    if (Array.isArray(value)) {
      if (value.length > 0 && descend) {
        const index = r.below(value.length);
        const copy = [...value];
        copy[index] = this.mutateNode(copy[index], depth + 1);
        return copy;
      }
      if (value.length > 0 && r.chance(0.3)) return value.filter((_, index) => index !== r.below(value.length));
      return [...value, this.randomValue(depth)];
    }
    if (value !== null && typeof value === 'object') {
      const keys = Object.keys(value);
      if (keys.length > 0 && descend) {
        const key = r.pick(keys);
        return { ...value, [key]: this.mutateNode(value[key], depth + 1) };
      }
      if (keys.length > 0 && r.chance(0.3)) {
        const copy = { ...value };
        delete copy[r.pick(keys)];
        return copy;
      }
      return { ...value, [r.pick(this.dictionary)]: this.randomValue(depth) };
    }
    return this.randomValue(depth);
  }

  private randomValue(depth: number): Json {
    const r = this.random;
    switch (r.below(9)) {
      case 0:
        return null;
      case 1:
        return r.chance(0.5);
      case 2:
        return r.pick(INTERESTING_NUMBERS);
      case 3:
        return r.pick(INTERESTING_STRINGS);
      case 4:
        return r.pick(this.dictionary);
      case 5:
        return depth < 6 ? [this.randomValue(depth + 1)] : [];
      case 6:
        return depth < 6 ? { [r.pick(this.dictionary)]: this.randomValue(depth + 1) } : {};
      case 7: {
        // Deep nesting, for the payload depth limit and the parsers' recursion.
        let nested: Json = r.pick(INTERESTING_STRINGS);
        for (let i = 0, n = r.below(1200); i < n; i++) nested = [nested];
        return nested;
      }
      default:
        return r.below(2 ** 31) - 2 ** 30;
    }
  }
}
