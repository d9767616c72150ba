// hutch's entry point. The native launcher turns on Node's compile cache
// (NODE_COMPILE_CACHE) so that even this module loads pre-compiled; the
// variable is dropped here so that programs hutch starts do not inherit it.
import { main } from './main.ts';

if (process.env.HUTCH_SET_COMPILE_CACHE) {
  delete process.env.NODE_COMPILE_CACHE;
  delete process.env.HUTCH_SET_COMPILE_CACHE;
}
// No top-level await: the bundle is a CommonJS script (scripts/build.mjs).
void main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
