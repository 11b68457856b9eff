// Types of wat-fuse.mjs, for the tests that import it.
export interface SexpList {
  start: number;
  end: number;
  items: Sexp[];
}
export interface SexpAtom {
  start: number;
  end: number;
  text: string;
}
export type Sexp = SexpList | SexpAtom;
export function parseSexps(src: string): Sexp[];
export function fuseMulAdds(src: string): { text: string; madd: number; nmadd: number; kept: number };
export function hasLoopMulAdds(src: string): boolean;
