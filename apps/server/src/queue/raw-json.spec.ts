import { RawJson, stringifyWithRawJson } from './raw-json';

describe('stringifyWithRawJson', () => {
  it('embeds raw JSON text verbatim and serialises everything else as JSON.stringify does', () => {
    const payload = '{"protected":"eyJ","nested":[1,{"u":"\\u0000ü"}]}';
    const value = {
      jsonrpc: '2.0',
      id: 7,
      result: [
        { id: 'm1', encryptedMessage: new RawJson(payload) },
        { id: 'm2', encryptedMessage: new RawJson('{}') },
      ],
    };
    const text = stringifyWithRawJson(value);
    expect(text).toBe(`{"jsonrpc":"2.0","id":7,"result":[{"id":"m1","encryptedMessage":${payload}},{"id":"m2","encryptedMessage":{}}]}`);
    expect(JSON.parse(text).result[0].encryptedMessage).toEqual(JSON.parse(payload));
  });

  it('leaves client strings that look like placeholders alone', () => {
    const value = { id: '\u0000raw-0000000000000000-0', list: ['"\u0000raw-', 'x'], m: new RawJson('[1]') };
    expect(JSON.parse(stringifyWithRawJson(value))).toEqual({ id: '\u0000raw-0000000000000000-0', list: ['"\u0000raw-', 'x'], m: [1] });
  });

  it('is plain JSON.stringify when there is no raw value', () => {
    const value = { a: [1, 'two', null], b: { c: true } };
    expect(stringifyWithRawJson(value)).toBe(JSON.stringify(value));
  });
});
