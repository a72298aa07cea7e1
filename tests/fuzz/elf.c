/*
 * The ELF check of an uploaded artifact (runtime/server/control/
 * elf_check.c). The first input byte sets the room for the reason (1 to
 * 256 bytes); the rest is the artifact. Checks:
 * - accepted only when the bytes hold a whole ELF header with the magic,
 *   64-bit class, little-endian data, type ET_DYN and this machine (read
 *   here independently), and then every prefix shorter than the header is
 *   refused;
 * - refused with a reason: non-empty, NUL-terminated within its room;
 * - no byte is read past the artifact (the input has its exact size).
 */
#include <elf.h>
#include <string.h>

#include "fuzz.h"
#include "server/control/elf_check.h"

#if defined(__x86_64__)
#define MACHINE EM_X86_64
#else
#define MACHINE EM_AARCH64
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  size_t whylen = (size_t)data[0] + 1;
  data++, size--;
  char why[257];
  memset(why, 'x', sizeof why);
  int rc = imp_elf_check(data, size, why, whylen);
  int want = size >= sizeof(Elf64_Ehdr);
  if (want) {
    Elf64_Ehdr eh;
    memcpy(&eh, data, sizeof eh);
    want = memcmp(eh.e_ident, ELFMAG, SELFMAG) == 0 &&
           eh.e_ident[EI_CLASS] == ELFCLASS64 &&
           eh.e_ident[EI_DATA] == ELFDATA2LSB && eh.e_type == ET_DYN &&
           eh.e_machine == MACHINE;
  }
  if (rc == 0) {
    FUZZ_CHECK(want);
    char w2[64];
    for (size_t n = 0; n < sizeof(Elf64_Ehdr); n += 7)
      FUZZ_CHECK(imp_elf_check(data, n, w2, sizeof w2) == -1);
  } else {
    FUZZ_CHECK(rc == -1 && !want);
    size_t n = strnlen(why, whylen);
    FUZZ_CHECK(n < whylen && (whylen == 1 || n > 0));
    FUZZ_CHECK(why[whylen] == 'x'); /* nothing past its room */
  }
  return 0;
}
