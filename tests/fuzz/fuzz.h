/* fuzz.h: the libFuzzer entry point every tests/fuzz/fuzz_<name>.c defines.
 * Built with clang -fsanitize=fuzzer by `make fuzz`, and with the normal
 * compiler and replay.c by `make test`, which runs the seed corpora. */
#ifndef MLREG_FUZZ_H
#define MLREG_FUZZ_H

#include <stddef.h>
#include <stdint.h>

/* One input: must never crash, leak or write outside a temp dir; abort()s
 * when a property the target checks does not hold. Returns 0. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
