/** The part of istanbul-lib-instrument 6 the fuzzer uses (the package ships no types). */
declare module 'istanbul-lib-instrument' {
  export interface Instrumenter {
    instrumentSync(code: string, filename: string): string;
  }
  export function createInstrumenter(options: Record<string, unknown>): Instrumenter;
}
